# Crash and restart: no training stays 'processing' after kill -9 of a worker, an immediate
# shutdown, pg_terminate_backend of a worker or of the launcher; training.max_attempts; fast
# shutdown during a training; max_worker_processes exhausted.
use strict;
use warnings;
use FindBin;
use lib $FindBin::Bin;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use TrainingTest;

# Trainings last about 16 * 40 ms = 0.6 s or more, so they can be hit in the middle.
my $node = new_node('recovery', 'training.test_image_delay' => "'40ms'");
setup_db($node, 'db');
my $ds = make_dataset($node, 'db', 'faces', 2, 8);

sub attempts
{
	my ($id) = @_;
	return $node->safe_psql('db', "SELECT attempts FROM training.trainings WHERE id = '$id'");
}

# kill -9 of a worker: the postmaster restarts everything; the training is queued again.
my $t1 = create_training($node, 'db', $ds, 'k9');
ok(wait_state($node, 'db', $t1, 'processing'), 'training processing before kill -9');
my $pid = training_worker_pid($node, 'db', $t1);
kill 'KILL', $pid;
ok(wait_state($node, 'db', $t1, 'completed'), 'training completes after kill -9 of its worker');
is(attempts($t1), '2', 'it was started twice');

# Immediate shutdown in the middle of a training.
my $t2 = create_training($node, 'db', $ds, 'imm');
ok(wait_state($node, 'db', $t2, 'processing'), 'training processing before immediate shutdown');
$node->stop('immediate');
$node->start;
ok(wait_state($node, 'db', $t2, 'completed'), 'training completes after an immediate shutdown');
is(attempts($t2), '2', 'it was started twice');

# pg_terminate_backend of a worker: queued again at once, then completes.
my $t3 = create_training($node, 'db', $ds, 'term');
ok(wait_state($node, 'db', $t3, 'processing'), 'training processing before pg_terminate_backend');
$pid = training_worker_pid($node, 'db', $t3);
my $offset = -s $node->logfile;
$node->safe_psql('db', "SELECT pg_terminate_backend($pid)");
ok(wait_state($node, 'db', $t3, 'completed'), 'training completes after its worker was terminated');
is(attempts($t3), '2', 'it was started twice');
like(slurp_file($node->logfile, $offset), qr/training $t3 interrupted: its worker was terminated/,
	'the log names the termination');

# pg_terminate_backend of the launcher: it comes back and trainings still run.
my $lpid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'training launcher'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($lpid)");
ok( wait_for($node, 'postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'training launcher' AND pid <> $lpid"),
	'a terminated launcher comes back');
my $t4 = create_training($node, 'db', $ds, 'after-launcher');
ok(wait_state($node, 'db', $t4, 'completed'), 'trainings run after the launcher restarted');

# The launcher terminated while a training runs: the training is not disturbed.
my $t5 = create_training($node, 'db', $ds, 'launcher-mid');
ok(wait_state($node, 'db', $t5, 'processing'), 'training processing before the launcher is terminated');
$lpid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'training launcher'");
$node->safe_psql('postgres', "SELECT pg_terminate_backend($lpid)");
ok(wait_state($node, 'db', $t5, 'completed'), 'training completes although the launcher was terminated');
is(attempts($t5), '1', 'it was started once');

# training.max_attempts: a training interrupted that often fails with an error naming the cause.
# A tenant's look-alike of the format() the give-up path calls, first on the database's
# search_path (as a schema writable by tenants would allow), must never run in the worker.
$node->safe_psql('db', q{
	CREATE SCHEMA planted;
	CREATE TABLE planted.calls (what text);
	CREATE FUNCTION planted.format(f text, a integer, b integer, c text) RETURNS text LANGUAGE sql
	    AS $$ INSERT INTO planted.calls VALUES ('format'); SELECT pg_catalog.format(f, a, b, c) $$;
	CREATE FUNCTION planted.format(f text, a integer, b integer) RETURNS text LANGUAGE sql
	    AS $$ INSERT INTO planted.calls VALUES ('format'); SELECT pg_catalog.format(f, a, b) $$;
	ALTER DATABASE db SET search_path = planted, pg_catalog});
$node->safe_psql('postgres', "ALTER SYSTEM SET training.max_attempts = 1; SELECT pg_reload_conf()");
my $t6 = create_training($node, 'db', $ds, 'give-up');
ok(wait_state($node, 'db', $t6, 'processing'), 'training processing before kill -9');
$pid = training_worker_pid($node, 'db', $t6);
kill 'KILL', $pid;
ok(wait_state($node, 'db', $t6, 'failed'), 'training fails after training.max_attempts');
my $err = $node->safe_psql('db', "SELECT error FROM training.trainings WHERE id = '$t6'");
like($err, qr/gave up after 1 attempts \(training\.max_attempts = 1\): the server restarted/,
	"error names the cause: $err");
is($node->safe_psql('db', "SELECT count(*) FROM training.models WHERE name = 'give-up'"), '0',
	'no model for the failed training');

$t6 = create_training($node, 'db', $ds, 'give-up-term');
ok(wait_state($node, 'db', $t6, 'processing'), 'training processing before pg_terminate_backend');
$pid = training_worker_pid($node, 'db', $t6);
$node->safe_psql('db', "SELECT pg_terminate_backend($pid)");
ok(wait_state($node, 'db', $t6, 'failed'), 'terminated training fails at training.max_attempts');
like($node->safe_psql('db', "SELECT error FROM training.trainings WHERE id = '$t6'"),
	qr/its worker was terminated/, 'error names the termination');
$node->safe_psql('postgres', "ALTER SYSTEM RESET training.max_attempts; SELECT pg_reload_conf()");
is($node->safe_psql('db', 'SELECT count(*) FROM planted.calls'), '0',
	'the give-up paths ran none of the planted functions');
$node->safe_psql('db', 'ALTER DATABASE db RESET search_path; DROP SCHEMA planted CASCADE');

# Fast shutdown during a training finishes promptly; the training resumes after the restart.
my $t7 = create_training($node, 'db', $ds, 'fast');
ok(wait_state($node, 'db', $t7, 'processing'), 'training processing before fast shutdown');
my $t0 = time;
$node->stop('fast');
my $took = time - $t0;
note(sprintf('fast shutdown took %.3f s', $took));
ok($took < 5, 'fast shutdown during a training takes less than 5 s');
$node->start;
ok(wait_state($node, 'db', $t7, 'completed'), 'training completes after the restart');
is($node->safe_psql('db', "SELECT count(*) FROM training.trainings WHERE state = 'processing'"),
	'0', 'nothing left processing');

# Recovery runs even where training.enabled is off: a crash leaves nothing processing with a dead
# pid; the training waits until trainings are enabled again.
my $t8 = create_training($node, 'db', $ds, 'disabled');
ok(wait_state($node, 'db', $t8, 'processing'), 'training processing before training.enabled = off and kill -9');
$node->safe_psql('postgres', 'ALTER DATABASE db SET training.enabled = off');
$pid = training_worker_pid($node, 'db', $t8);
kill 'KILL', $pid;
ok(wait_state($node, 'db', $t8, 'waiting'), 'with training.enabled off, the crashed training is queued again');
sleep 2;
is(state_of($node, 'db', $t8), 'waiting', 'and it is not started while disabled');
$node->safe_psql('postgres', 'ALTER DATABASE db RESET training.enabled');
$node->safe_psql('db', "SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'wake')");
ok(wait_state($node, 'db', $t8, 'completed'), 'enabled again, it completes');
$node->stop;

# max_worker_processes exhausted: trainings wait with a WARNING and a hint, never fail.
# Slots: the training launcher, the logical replication launcher and one left for a worker.
my $small = new_node('small', 'max_worker_processes' => 3, 'training.max_workers' => 3,
	'training.test_image_delay' => "'100ms'");
setup_db($small, 'db');
my $sds = make_dataset($small, 'db', 'faces', 2, 8);
my @ts = map { create_training($small, 'db', $sds, "small$_") } 1 .. 2;
$small->wait_for_log(qr/WARNING:  training: no background worker slot is free/);
like(slurp_file($small->logfile), qr/HINT:  Raise max_worker_processes/, 'hint says what to change');
is( $small->safe_psql('db', "SELECT count(*) FROM training.trainings WHERE state = 'waiting'"),
	'1', 'the training without a worker stays waiting');
ok(wait_state($small, 'db', $_, 'completed'), 'training completes once a worker is free') for @ts;
$small->stop;

done_testing();
