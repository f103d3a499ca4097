# training-worker: trainings run outside the server, sharing the queue, under leases.
#   - with training.max_workers = 0, two training-worker processes share a batch of trainings,
#     each woken by LISTEN (no poll delay) and each completing some;
#   - SIGTERM mid-training queues the training again and the process exits 0;
#   - kill -9 of one mid-training: the other finishes it once the lease expired (attempt 2);
#   - a worker frozen (SIGSTOP) past its lease, then resumed, writes nothing: no progress, no
#     model version; the training is completed once, by the other worker;
#   - deleting a running training stops it there, and the worker takes the next one;
#   - a transaction that creates a training can be prepared;
#   - the server restarting mid-training: the worker reconnects and the training completes;
#   - pg_stat_activity shows who works on what;
#   - a remote training uses the server's training.face_features unless the worker is told otherwise;
#   - an in-server worker renews its lease in time whatever training.progress_interval says.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use POSIX ();
use FindBin;
use lib $FindBin::RealBin;
use TrainingTest;

my $node = new_node('remote', 'training.max_workers' => 0, 'training.lease_timeout' => '3s',
	'training.background_features' => 'off', 'max_prepared_transactions' => 2);
setup_db($node, 'db');
$node->safe_psql('db', 'CREATE ROLE tw LOGIN IN ROLE training_worker');
my $ds = make_dataset($node, 'db', 'remote', 3, 4);

my $bin = 'training-worker';
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $conninfo = 'host=' . $node->host . ' port=' . $node->port . ' dbname=db user=tw';

# Start a training-worker in the background; returns (pid, log file).
my $nworkers = 0;
sub start_worker
{
	my (@opts) = @_;
	my $log = "$tmp/worker" . (++$nworkers) . '.log';
	my $pid = fork();
	die "fork: $!" unless defined $pid;
	if ($pid == 0)
	{
		open(STDOUT, '>>', $log) or die;
		open(STDERR, '>>', $log) or die;
		exec($bin, '-v', @opts, $conninfo) or POSIX::_exit(127);
	}
	return ($pid, $log);
}

sub slurp_log { my ($f) = @_; return -f $f ? PostgreSQL::Test::Utils::slurp_file($f) : ''; }

# Wait for a process to exit (up to 30 s); returns its exit status, or undef.
sub reap
{
	my ($pid) = @_;
	my $deadline = time + 30;
	while (time < $deadline)
	{
		my $r = waitpid($pid, POSIX::WNOHANG());
		return $? if $r == $pid;
		usleep(50_000);
	}
	return undef;
}

sub stop_worker
{
	my ($pid) = @_;
	kill 'CONT', $pid;
	kill 'TERM', $pid;
	return reap($pid);
}

sub worker_of
{
	my ($id) = @_;
	return $node->safe_psql('db', "SELECT coalesce(worker, '') FROM training.trainings WHERE id = '$id'");
}

# --- Two workers share a batch; LISTEN wakes them at once. ---------------------------------
my ($w1, $log1) = start_worker('--poll', '60');
my ($w2, $log2) = start_worker('--poll', '60', '--test-image-delay', '20');
# Both are up and idle (each has claimed nothing yet and listens).
ok(wait_for($node, 'db',
	q{SELECT count(*) = 2 FROM pg_stat_activity WHERE application_name LIKE 'training-worker %'}),
	'two training-workers connected, named in pg_stat_activity');
my @batch = map { create_training($node, 'db', $ds, "batch$_") } 1 .. 6;
my $t0 = time;
my $all = join ',', map { "'$_'" } @batch;
ok(wait_for($node, 'db', "SELECT bool_and(state = 'completed') FROM training.trainings WHERE id IN ($all)"),
	'a batch of 6 trainings completes with max_workers = 0');
note(sprintf('batch of 6 completed in %.1f s', time - $t0));
my ($c1, $c2) = map { my $l = slurp_log($_); scalar(() = $l =~ /completed in/g) } $log1, $log2;
ok($c1 >= 1 && $c2 >= 1 && $c1 + $c2 == 6, "both workers completed some ($c1 + $c2)");
is($node->safe_psql('db', "SELECT count(*) FROM training.model_versions v JOIN training.trainings t ON t.id = v.training_id WHERE t.id IN ($all)"),
	'6', 'one model version per training');
is($node->safe_psql('db', "SELECT count(*) FROM training.trainings WHERE id IN ($all) AND (worker IS NOT NULL OR lease_expires IS NOT NULL)"),
	'0', 'completed trainings hold no claim');
is(stop_worker($w1), 0, 'SIGTERM: an idle worker exits 0');
is(stop_worker($w2), 0, 'SIGTERM: the other exits 0');

# --- SIGTERM mid-training queues it again. --------------------------------------------------
my ($w3, $log3) = start_worker('--test-image-delay', '300');
my $tt = create_training($node, 'db', $ds, 'term');
ok(wait_for($node, 'db', "SELECT progress > 0 FROM training.trainings WHERE id = '$tt'"), 'a slow training runs');
like(worker_of($tt), qr/^training-worker \S+:$w3$/, 'trainings.worker names the process (host:pid)');
like($node->safe_psql('db', "SELECT query FROM pg_stat_activity WHERE application_name LIKE 'training-worker %:$w3'"),
	qr/training $tt/, 'pg_stat_activity shows the training it works on');
is(stop_worker($w3), 0, 'SIGTERM mid-training: exit status 0');
is($node->safe_psql('db', "SELECT state || ' ' || attempts || ' ' || (stage LIKE 'requeued: %') FROM training.trainings WHERE id = '$tt'"),
	'waiting 1 true', 'SIGTERM queues the training again');

# --- kill -9 mid-training: the other worker finishes it after the lease. --------------------
my ($w4, $log4) = start_worker('--test-image-delay', '300');
ok(wait_for($node, 'db', "SELECT progress > 0 AND worker LIKE '%:$w4' FROM training.trainings WHERE id = '$tt'"),
	'a worker runs it');
kill 'KILL', $w4;
reap($w4);
my $killed = time;
my ($w5, $log5) = start_worker('--poll', '1');
ok(wait_for($node, 'db', "SELECT state = 'completed' FROM training.trainings WHERE id = '$tt'"),
	'killed mid-training: another worker completes it');
my $took = time - $killed;
note(sprintf('from kill -9 to completed: %.1f s (lease 3 s)', $took));
ok($took >= 2.5, sprintf('not before the lease expired (%.1f s)', $took));
is($node->safe_psql('db', "SELECT attempts FROM training.trainings WHERE id = '$tt'"), '3',
	'attempts counts the killed start (3: SIGTERM, kill -9, done)');

is(stop_worker($w5), 0, 'the other exits cleanly');

# --- A worker frozen past its lease writes nothing once resumed. ----------------------------
my ($w6, $log6) = start_worker('--test-image-delay', '200');
my $tf = create_training($node, 'db', $ds, 'frozen');
ok(wait_for($node, 'db', "SELECT progress > 0 AND worker LIKE '%:$w6' FROM training.trainings WHERE id = '$tf'"),
	'the worker to freeze runs it');
kill 'STOP', $w6;
# Another worker (poll 1 s) queues it again once the lease expired and runs it to the end.
my ($w7, $log7) = start_worker('--poll', '1');
ok(wait_for($node, 'db', "SELECT state = 'completed' FROM training.trainings WHERE id = '$tf'"),
	'frozen past its lease: the other worker completes it');
my $after = $node->safe_psql('db',
	"SELECT attempts || ' ' || progress || ' ' || output_model_version FROM training.trainings WHERE id = '$tf'");
kill 'CONT', $w6;
# The resumed worker's next write finds its claim gone.
my $deadline = time + 20;
usleep(200_000) while time < $deadline && slurp_log($log6) !~ /claim lost|no longer|gone/i;
like(slurp_log($log6), qr/claim lost|no longer|gone/i, 'the resumed worker learns its claim is lost');
is($node->safe_psql('db',
	"SELECT attempts || ' ' || progress || ' ' || output_model_version FROM training.trainings WHERE id = '$tf'"),
	$after, 'and writes nothing: no progress, no state, no version');
is($node->safe_psql('db', "SELECT count(*) FROM training.model_versions WHERE training_id = '$tf'"), '1',
	'one model version for the frozen training');
is(stop_worker($w6), 0, 'the resumed worker still exits cleanly');

# --- Deleting a running training stops it; the worker goes on with the next one. ------------
my ($w8, $log8) = start_worker('--test-image-delay', '200', '--poll', '1');
is(stop_worker($w7), 0, 'the other exits cleanly');
my $td = create_training($node, 'db', $ds, 'deleted');
ok(wait_for($node, 'db', "SELECT progress > 0 AND worker LIKE '%:$w8' FROM training.trainings WHERE id = '$td'"),
	'a training runs');
$node->safe_psql('db', "SELECT training.delete_training('$td')");
my $tn = create_training($node, 'db', $ds, 'next');
ok(wait_state($node, 'db', $tn, 'completed'), 'deleted mid-training: the same worker completes the next one');
is($node->safe_psql('db', "SELECT count(*) FROM training.models WHERE name = 'deleted'"), '0',
	'no model version for the deleted training');
like(slurp_log($log8), qr/$td.*(claim lost|gone|deleted)/i, 'its log says the training was gone');

# --- A creation can be prepared (its NOTIFY would forbid that: it is sent at commit only). ----
$node->safe_psql('db', "BEGIN; SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'prepared'); PREPARE TRANSACTION 'p1'");
$node->safe_psql('db', "COMMIT PREPARED 'p1'");
ok(wait_for($node, 'db', "SELECT state = 'completed' FROM training.trainings WHERE output_model_name = 'prepared'"),
	'a training created by a prepared transaction completes (found by the poll)');

# --- The server goes away mid-training and comes back: the worker reconnects and finishes. --
my $tc = create_training($node, 'db', $ds, 'cut');
ok(wait_for($node, 'db', "SELECT progress > 0 AND worker LIKE '%:$w8' FROM training.trainings WHERE id = '$tc'"),
	'a training runs');
$node->restart;
ok(wait_state($node, 'db', $tc, 'completed'), 'after a restart of the server the training completes');
ok(kill(0, $w8), 'the worker lived through the outage');
my $tafter = create_training($node, 'db', $ds, 'after');
ok(wait_state($node, 'db', $tafter, 'completed'), 'and takes new trainings on its new connection');
is(stop_worker($w8), 0, 'it exits cleanly');

# --- Unless told otherwise, a training-worker trains with the server's settings. ------------
$node->safe_psql('db', "ALTER SYSTEM SET training.face_features = 'classic'; SELECT pg_reload_conf()");
my ($w9, $log9) = start_worker('--poll', '1');
my $tk = create_training($node, 'db', $ds, 'kind');
ok(wait_state($node, 'db', $tk, 'completed'), 'a training with training.face_features = classic on the server');
is($node->safe_psql('db', "SELECT v.metrics ->> 'feature_kind' FROM training.model_versions v WHERE v.training_id = '$tk'"),
	'face-lbp-hog-v1', 'the remote worker used the server\'s feature kind');
is(stop_worker($w9), 0, 'it exits cleanly');

# --- In-server workers hold the same lease, renewed at least three times per lease. ----------
$node->safe_psql('db', q{
	ALTER SYSTEM SET training.max_workers = 1;
	ALTER SYSTEM SET training.lease_timeout = '2s';
	ALTER SYSTEM SET training.progress_interval = '5s';
	ALTER SYSTEM SET training.test_image_delay = 300;
	SELECT pg_reload_conf();
});
my $ti = create_training($node, 'db', $ds, 'inserver');
ok(wait_state($node, 'db', $ti, 'completed|failed'), 'an in-server training with a 2 s lease and a 5 s progress interval');
is($node->safe_psql('db', "SELECT state || ' ' || attempts FROM training.trainings WHERE id = '$ti'"), 'completed 1',
	'completes at its first attempt: its worker renews the lease in time');

done_testing();
