# The background worker: pickup in every database, progress, NOTIFY, pg_stat_activity, failure,
# cancel, max_workers, and DDL (DROP DATABASE / DROP EXTENSION / ALTER EXTENSION) never blocked.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TrainingTest;

my $node = new_node('worker', 'training.max_workers' => 2);

# The launcher runs with no database and shows in pg_stat_activity.
ok( wait_for($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'training launcher' AND datname IS NULL"),
	'launcher visible in pg_stat_activity');

# The postmaster stays single-threaded: OpenBLAS threads belong to the workers only.
my ($pm_pid) = split /\n/, slurp_file($node->data_dir . '/postmaster.pid');
my @threads = glob("/proc/$pm_pid/task/*");
is(scalar(@threads), 1, 'the postmaster runs one thread');

# The training. prefix is reserved: a misspelt setting is an error, not a silent placeholder.
my ($rc, $o, $e) = $node->psql('postgres', 'SET training.max_worker = 1');
like($e, qr/invalid configuration parameter name "training\.max_worker"/, 'training. prefix is reserved');

# A database created and given the extension after the launcher started is picked up.
setup_db($node, 'db1');
my $ds1 = make_dataset($node, 'db1', 'faces', 2, 8);
my $t1 = create_training($node, 'db1', $ds1, 'm1');
ok(wait_state($node, 'db1', $t1, 'completed'), 'training in a database created later completes');
is( $node->safe_psql('db1', qq{
		SELECT progress = 1 AND time_started IS NOT NULL AND time_completed >= time_started
		       AND duration > 0 AND error = '' AND attempts = 1 AND output_model_version = 1
		       AND worker_pid IS NULL
		FROM training.trainings WHERE id = '$t1'}),
	't', 'completed training has progress 1, times, duration and version 1');
is( $node->safe_psql('db1', qq{
		SELECT count(*) FROM training.model_versions v JOIN training.models m ON m.id = v.model_id
		WHERE v.training_id = '$t1' AND m.name = 'm1' AND v.version_number = 1
		  AND m.owner = 'postgres' AND v.dataset <> '{}' AND length(v.parameters) > 0}),
	'1', 'model created with version 1, dataset snapshot and parameters');

# A second training of the same model adds version 2.
my $t2 = create_training($node, 'db1', $ds1, 'm1');
ok(wait_state($node, 'db1', $t2, 'completed'), 'second training completes');
is($node->safe_psql('db1', "SELECT output_model_version FROM training.trainings WHERE id = '$t2'"),
	'2', 'second training adds version 2');

# Slow the image stream down so that trainings last a few seconds.
$node->safe_psql('postgres', "ALTER SYSTEM SET training.test_image_delay = '60ms'; SELECT pg_reload_conf()");

# Progress seen from another session: monotonic, duration growing, ends at 1.0; NOTIFY on each state.
my $ds_obs = make_dataset($node, 'db1', 'observed', 2, 24);
my $listener = $node->background_psql('db1');
$listener->query_safe('LISTEN training_state');
my $t3 = create_training($node, 'db1', $ds_obs, 'm3');
my (@progress, @duration, @when, $seen_activity);
for (my $i = 0; $i < 400; $i++)
{
	my ($state, $p, $d, $act) = split /\|/, $node->safe_psql('db1', qq{
		SELECT state, progress, duration,
		  (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'training worker'
		     AND application_name = 'training worker' AND query LIKE 'training $t3: %')
		FROM training.trainings WHERE id = '$t3'});
	if ($state eq 'processing')
	{
		push @progress, $p;
		push @duration, $d;
		push @when, time;
		$seen_activity ||= $act > 0;
	}
	last if $state eq 'completed' || $state eq 'failed';
	usleep(50_000);
}
is(state_of($node, 'db1', $t3), 'completed', 'observed training completes');
ok(@progress >= 3, 'training observed while processing (' . scalar(@progress) . ' samples)');
my $monotonic = 1;
$monotonic &&= $progress[$_] >= $progress[ $_ - 1 ] for 1 .. $#progress;
ok($monotonic, 'progress never goes down');
my %distinct = map { $_ => 1 } grep { $_ > 0 && $_ < 1 } @progress;
ok(keys %distinct >= 2, 'progress seen rising while processing: ' . join(' ', sort keys %distinct));
ok($duration[-1] > $duration[0], "duration grows while processing ($duration[0] -> $duration[-1])");
# While images load (progress below 0.5), progress moves at least every ~0.5 s (progress_interval).
my ($last_change, $longest) = (undef, 0);
for my $k (1 .. $#progress)
{
	next unless $progress[$k] > 0 && $progress[$k] < 0.5;
	if ($progress[$k] != $progress[ $k - 1 ])
	{
		$longest = $when[$k] - $last_change if defined $last_change && $when[$k] - $last_change > $longest;
		$last_change = $when[$k];
	}
}
ok(defined $last_change && $longest < 1.2, sprintf('progress moves while loading (longest still %.2f s)', $longest));
ok($seen_activity, 'pg_stat_activity shows the worker with the training and its stage');
my $notes = $listener->query_safe('SELECT 1');
$notes .= $listener->{stderr} // '';
like($notes, qr/\{"id": "$t3", "state": "processing", "previous_state": "waiting"\}/,
	'NOTIFY announces processing');
like($notes, qr/\{"id": "$t3", "state": "completed", "previous_state": "processing"\}/,
	'NOTIFY announces completed');
# Creations are not announced: NOTIFY would make concurrent create_training calls commit in turn.
unlike($notes, qr/\{"id": "$t3", "state": "waiting", "previous_state": null\}/,
	'NOTIFY does not announce the creation');
$listener->quit;

# A dataset with one class is refused at creation (22023): it could only fail.
my $ds_one = make_dataset($node, 'db1', 'one class', 1, 4);
my ($one_rc, $one_out, $one_err) = $node->psql('db1',
	"SELECT training.create_training(source_dataset_id => '$ds_one', output_model_name => 'one')");
like($one_err, qr/a training needs at least two/, 'a one-class dataset is refused at creation');

# Failure: a training whose every face is filtered out fails with a readable error; the worker carries on.
my $bad = $node->safe_psql('db1', "SELECT training.create_training(source_dataset_id => '$ds1', "
	  . "output_model_name => 'bad', config => '{\"min_face_size\": 100000}')->>'id'");
my $good = create_training($node, 'db1', $ds1, 'after-bad');
ok(wait_state($node, 'db1', $bad, 'failed'), 'training with every face filtered out fails');
my $err = $node->safe_psql('db1', "SELECT error FROM training.trainings WHERE id = '$bad'");
like($err, qr/no usable face/, "failed training has a readable error: $err");
ok(wait_state($node, 'db1', $good, 'completed'), 'next training still completes after a failure');
is($node->safe_psql('db1', "SELECT count(*) FROM training.model_versions WHERE training_id = '$bad'"),
	'0', 'no version for the failed training');

# Cancel: deleting a processing training stops its worker; no version; the log shows a cancel.
my $t4 = create_training($node, 'db1', $ds_obs, 'm4');
ok(wait_for($node, 'db1', "SELECT stage <> 'starting' AND state = 'processing' FROM training.trainings WHERE id = '$t4'"),
	'training to cancel is processing');
my $offset = -s $node->logfile;
my $t0 = time;
$node->safe_psql('db1', "DELETE FROM training.trainings WHERE id = '$t4'");
ok( wait_for($node, 'db1',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE 'training $t4:%'"),
	'worker left the deleted training');
my $stop = time - $t0;
note(sprintf('cancel took %.3f s', $stop));
# Streaming its 48 images alone takes 48 * 60 ms; it was deleted during the first ones.
ok($stop < 2, sprintf('the worker stopped %.3f s after the delete, long before the training could end', $stop));
$node->wait_for_log(qr/training $t4 canceled/, $offset);
my $log = slurp_file($node->logfile, $offset);
unlike($log, qr/terminated by signal|ERROR/, 'the log shows a cancel, not a crash or an error');
is($node->safe_psql('db1', "SELECT count(*) FROM training.models WHERE name = 'm4'"), '0',
	'no model written for the canceled training');

# training.max_workers: never more trainings processing than allowed.
$node->safe_psql('postgres', "ALTER SYSTEM SET training.max_workers = 1; SELECT pg_reload_conf()");
my @many = map { create_training($node, 'db1', $ds1, "mw$_") } 1 .. 3;
my $max_seen = 0;
for (my $i = 0; $i < 600; $i++)
{
	my ($proc, $done) = split /\|/, $node->safe_psql('db1', q{
		SELECT count(*) FILTER (WHERE state = 'processing'),
		       count(*) FILTER (WHERE state IN ('completed', 'failed'))
		FROM training.trainings WHERE output_model_name LIKE 'mw%'});
	$max_seen = $proc if $proc > $max_seen;
	last if $done == 3;
	usleep(50_000);
}
is($max_seen, 1, 'with training.max_workers = 1 one training runs at a time');
is($node->safe_psql('db1', "SELECT count(*) FROM training.trainings WHERE output_model_name LIKE 'mw%' AND state = 'completed'"),
	'3', 'all queued trainings complete');

# A worker waiting for the next training never holds its database: CREATE DATABASE ... TEMPLATE
# does not wait for it, and with training.max_workers = 1 it gives its place up to another database.
$node->safe_psql('postgres', "ALTER SYSTEM SET training.worker_idle_timeout = '4s'; SELECT pg_reload_conf()");
my $ta = create_training($node, 'db1', $ds1, 'idle-a');
ok(wait_state($node, 'db1', $ta, 'completed'), 'training before idling completes');
ok( wait_for($node, 'postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'training worker'
		   AND datname = 'db1' AND query = 'training worker: waiting for the next training'}),
	'the finished worker waits in its database');
$t0 = time;
my ($ret, $out, $errout) = $node->psql('postgres', 'CREATE DATABASE db1copy TEMPLATE db1');
my $took = time - $t0;
is($ret, 0, 'CREATE DATABASE ... TEMPLATE of a database with an idle worker succeeds') or diag($errout);
ok($took < 3, sprintf('it did not wait for the idle worker to time out (%.3f s)', $took));
$node->safe_psql('postgres', 'DROP DATABASE db1copy');

setup_db($node, 'db4');
my $ds4 = make_dataset($node, 'db4', 'faces', 2, 8);
# Measured first: a pass that made room for db1's training would take the slot back afterwards.
ok(wait_for($node, 'db4', 'SELECT count(*) = 16 FROM training.image_features'), 'the images of db4 are measured');
$ta = create_training($node, 'db1', $ds1, 'idle-a2');
ok(wait_state($node, 'db1', $ta, 'completed'), 'training in db1 completes');
ok( wait_for($node, 'postgres', q{
		SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'training worker'
		   AND datname = 'db1' AND query = 'training worker: waiting for the next training'}),
	'its worker waits in db1');
my $tb = create_training($node, 'db4', $ds4, 'idle-b');
ok(wait_state($node, 'db4', $tb, 'processing|completed'), 'training in db4 starts');
my $lat = $node->safe_psql('db4',
	"SELECT extract(epoch FROM time_started - time_created) FROM training.trainings WHERE id = '$tb'");
ok($lat < 3, "the idle worker of db1 gave its place up at once ($lat s)");
ok(wait_state($node, 'db4', $tb, 'completed'), 'training in db4 completes');
$node->safe_psql('postgres', "ALTER SYSTEM RESET training.worker_idle_timeout; "
	  . "ALTER SYSTEM SET training.max_workers = 2; SELECT pg_reload_conf()");

# DROP DATABASE is not blocked by a training running in it.
setup_db($node, 'db2');
my $ds2 = make_dataset($node, 'db2', 'faces', 2, 8);
my $t5 = create_training($node, 'db2', $ds2, 'm5');
ok(wait_state($node, 'db2', $t5, 'processing'), 'training in db2 processing');
$t0 = time;
($ret, $out, $errout) = $node->psql('postgres', 'DROP DATABASE db2');
is($ret, 0, 'DROP DATABASE succeeds while a training runs in it') or diag($errout);
note(sprintf('DROP DATABASE took %.3f s', time - $t0));

# DROP EXTENSION is not blocked by a running training; the worker stops quietly.
setup_db($node, 'db3');
my $ds3 = make_dataset($node, 'db3', 'faces', 2, 8);
my $t6 = create_training($node, 'db3', $ds3, 'm6');
ok(wait_state($node, 'db3', $t6, 'processing'), 'training in db3 processing');
($ret, $out, $errout) = $node->psql('db3', 'ALTER EXTENSION training UPDATE');
is($ret, 0, 'ALTER EXTENSION succeeds while a training runs') or diag($errout);
$offset = -s $node->logfile;
($ret, $out, $errout) = $node->psql('db3', 'DROP EXTENSION training CASCADE');
is($ret, 0, 'DROP EXTENSION succeeds while a training runs') or diag($errout);
ok(wait_for($node, 'postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'training worker' AND datname = 'db3'"),
	'worker in db3 exits after DROP EXTENSION');
($ret, $out, $errout) = $node->psql('postgres', 'DROP DATABASE db3');
is($ret, 0, 'DROP DATABASE of an idle database with the extension succeeds') or diag($errout);

# The fallback poll (training.naptime) finds a training inserted without the wake-up trigger.
$node->safe_psql('postgres', "ALTER SYSTEM SET training.naptime = '1s'; SELECT pg_reload_conf()");
my $quiet = $node->safe_psql('db1', qq{
	SET session_replication_role = replica;
	INSERT INTO training.trainings (source_dataset_id, output_model_name, type)
	VALUES ('$ds1', 'no-trigger', 'face') RETURNING id});
ok(wait_state($node, 'db1', $quiet, 'completed'), 'the naptime poll picks up a training inserted with triggers off');
$node->safe_psql('postgres', "ALTER SYSTEM RESET training.naptime; SELECT pg_reload_conf()");

# Nothing stays connected to a database while idle.
ok( wait_for($node, 'postgres',
		"SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'training worker'"),
	'no worker stays connected while idle');

# Without shared_preload_libraries, creating a training warns that nothing will process it.
$node->stop;
$node->adjust_conf('postgresql.conf', 'shared_preload_libraries', "''");
$node->start;
($ret, $out, $errout) = $node->psql('db1',
	"SELECT training.create_training(source_dataset_id => '$ds1', output_model_name => 'np')");
like($errout, qr/WARNING:.*nothing will process this training/, 'warning without preload');
like($errout, qr/HINT:.*shared_preload_libraries/, 'hint names shared_preload_libraries');

$node->stop;
done_testing();
