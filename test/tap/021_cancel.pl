# Cancel ends the core's long loops: statement_timeout and pg_cancel_backend end detect_faces,
# check_image and evaluate_dataset on a 36 MP image within about half a second, and deleting a
# training stops its worker as fast, which then takes the next training in the same process.
# A cancel that arrives in one of the worker's callbacks (an ERROR there) does not jump through
# the core either: the callback says stop, the training fails with the cancel's message, and the
# same process takes the next training.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use FindBin;
use lib $FindBin::RealBin;
use TrainingTest;

# No background measuring: the trainings and evaluations here must decode the big image themselves.
my $node = new_node('cancel', 'training.max_workers' => 1, 'training.background_features' => 'off');
setup_db($node, 'db');
# A 6000 x 6000 grey image (36 MP, within training.max_image_pixels), kept in a table.
$node->safe_psql('db', q{
	CREATE TABLE big AS SELECT convert_to('P5 6000 6000 255' || chr(10), 'SQL_ASCII')
	    || decode(repeat('8090a0b0', 9000000), 'hex') AS img});

# Run a statement with a statement_timeout; returns (seconds, stderr).
sub timed
{
	my ($sql, $timeout) = @_;
	my $t0 = time;
	my ($rc, $out, $err) = $node->psql('db', "SET statement_timeout = '$timeout'; $sql");
	return (time - $t0, $err);
}

# detect_faces needs the face networks (make models); without them it answers 55000.
my ($nrc) = $node->psql('db',
	q{SELECT training.detect_faces(convert_to('P5 8 8 255' || chr(10), 'SQL_ASCII') || decode(repeat('80', 64), 'hex'))});
my $networks = $nrc == 0;
my @calls = (
	['check_image (face)', q{SELECT training.check_image(img, NULL, 'face', '{}') FROM big}],
	['check_image (landmark)', q{SELECT training.check_image(img, NULL, 'landmark', '{}') FROM big}]);
push @calls, ['detect_faces', q{SELECT training.detect_faces(img) FROM big}] if $networks;
for my $c (@calls)
{
	my ($name, $sql) = @$c;
	my ($full) = timed($sql, 0);
	my ($took, $err) = timed($sql, '50ms');
	note(sprintf('%s: %.2f s in full, %.2f s with statement_timeout = 50ms', $name, $full, $took));
	if ($full < 0.08)
	{
		pass("$name is too fast to interrupt ($full s)");
		next;
	}
	like($err, qr/canceling statement due to statement timeout/, "$name: statement_timeout ends it");
	ok($took < 0.6, sprintf('%s ends within 0.5 s of the timeout (%.2f s)', $name, $took));
}

# pg_cancel_backend from another session.
my $bg = $node->background_psql('db', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_until(qr/started/, q{\echo started
SELECT training.check_image(img, NULL, 'face', '{}') FROM big;
});
usleep(150_000);
my $t0 = time;
$node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)");
ok($node->poll_query_until('postgres',
		"SELECT state = 'idle' OR query NOT LIKE '%check_image%' FROM pg_stat_activity WHERE pid = $pid"),
	'pg_cancel_backend ends check_image');
my $cancel = time - $t0;
ok($cancel < 0.6, sprintf('within 0.5 s (%.2f s)', $cancel));
$bg->quit;

# evaluate_dataset over big images.
$node->safe_psql('db', q{
	DO $$
	DECLARE ds uuid := (training.create_dataset('big', 'face') ->> 'id')::uuid;
	BEGIN
	    FOR c IN 1..2 LOOP
	        INSERT INTO training.images (class_id, data)
	        SELECT (training.create_class(ds, 'c' || c) ->> 'id')::uuid, img FROM big, generate_series(1, 6);
	    END LOOP;
	END $$});
my ($took, $err) = timed(q{SELECT training.evaluate_dataset(id) FROM training.datasets WHERE name = 'big'}, '300ms');
like($err, qr/canceling statement due to statement timeout/, 'statement_timeout ends evaluate_dataset');
ok($took < 0.8, sprintf('within 0.5 s of the timeout (%.2f s)', $took));

# A training over the big images, deleted while a worker extracts features: the worker stops
# within about half a second and takes the next training in the same process.
my $ds = $node->safe_psql('db', "SELECT id FROM training.datasets WHERE name = 'big'");
my $t = create_training($node, 'db', $ds, 'big');
ok(wait_for($node, 'db', "SELECT stage = 'loading' FROM training.trainings WHERE id = '$t'"), 'the big training is loading');
# 12 images of 36 MP: seconds of decoding even on a fast machine (0.25 s each seen).
my $wpid = training_worker_pid($node, 'db', $t);
isnt($wpid, '', 'it is processing in a worker');
usleep(300_000);
$t0 = time;
$node->safe_psql('db', "SELECT training.delete_training('$t')");
ok(wait_for($node, 'db', "SELECT count(*) = 0 FROM pg_stat_activity WHERE query LIKE 'training $t:%'"),
	'the worker leaves the deleted training');
my $stop = time - $t0;
ok($stop < 0.6, sprintf('within 0.5 s (%.2f s)', $stop));
my $small = make_dataset($node, 'db', 'small', 2, 4);
my $next = create_training($node, 'db', $small, 'next');
ok(wait_state($node, 'db', $next, 'completed'), 'the next training completes');
like(slurp_file($node->logfile), qr/\[$wpid\] training worker LOG:  training $next started/,
	'in the same worker process');

# pg_cancel_backend of the worker while it waits in its next_image callback (training.test_image_delay):
# the callback catches the ERROR and says stop; the core unwinds; the worker reports the error.
$node->safe_psql('db', "ALTER SYSTEM SET training.test_image_delay = '300ms'");
$node->safe_psql('db', 'SELECT pg_reload_conf()');
my $slow = create_training($node, 'db', $small, 'slow');
ok(wait_for($node, 'db', "SELECT stage = 'loading' FROM training.trainings WHERE id = '$slow'"),
	'the slow training is loading');
my $spid = training_worker_pid($node, 'db', $slow);
usleep(100_000);
$node->safe_psql('db', "SELECT pg_cancel_backend($spid)");
ok(wait_state($node, 'db', $slow, 'failed'), 'the canceled training failed');
like($node->safe_psql('db', "SELECT error FROM training.trainings WHERE id = '$slow'"),
	qr/canceling statement due to user request/, 'with the message of the cancel');
$node->safe_psql('db', 'ALTER SYSTEM RESET training.test_image_delay');
$node->safe_psql('db', 'SELECT pg_reload_conf()');
my $after = create_training($node, 'db', $small, 'after cancel');
ok(wait_state($node, 'db', $after, 'completed'), 'the next training completes');
like(slurp_file($node->logfile), qr/\[$spid\] training worker LOG:  training $after started/,
	'in the same worker process as the canceled one');

$node->stop;
done_testing();
