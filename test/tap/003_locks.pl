# No lock hostage: a tenant holding FOR UPDATE on its own processing training never holds the
# worker. With one worker for the whole cluster, another role's training still starts within
# seconds; the held training is queued again and completes once the lock is released. The same
# for a training that fails while held. A role that does not own the database cannot stop its
# workers with a DROP DATABASE that fails.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use FindBin;
use lib $FindBin::RealBin;
use TrainingTest;

my $node = new_node('locks', 'training.max_workers' => 1, 'training.naptime' => "'1s'",
	'training.test_image_delay' => "'40ms'", 'training.face_features' => "'classic'");
setup_db($node, 'db');
$node->safe_psql('db', q{
	CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN;
	SELECT training.grant_access('alice'), training.grant_access('bob');
	GRANT EXECUTE ON FUNCTION test_pgm(int, int) TO alice, bob;});

# A dataset of 2 classes x 8 images owned by role, and a training of it; returns the training id.
sub train_as
{
	my ($role, $model, $config, $nimages) = @_;
	$config //= '{}';
	$nimages //= 8;
	return $node->safe_psql('db', qq{
		SET ROLE $role;
		DO \$\$
		DECLARE ds uuid; cl uuid;
		BEGIN
		  ds := (training.create_dataset(name => '$model', type => 'face')->>'id')::uuid;
		  FOR c IN 1..2 LOOP
		    cl := (training.create_class(dataset_id => ds, label => 'person ' || c)->>'id')::uuid;
		    FOR i IN 1..$nimages LOOP
		      PERFORM training.add_image(class_id => cl, data => public.test_pgm(i + c * 1000, (c - 1) * 60));
		    END LOOP;
		  END LOOP;
		  PERFORM set_config('test.ds', ds::text, false);
		END \$\$;
		SELECT training.create_training(source_dataset_id => current_setting('test.ds')::uuid,
		                                output_model_name => '$model', config => '$config')->>'id'});
}

my $held = train_as('alice', 'held');
ok(wait_state($node, 'db', $held, 'processing'), "alice's training is processing");

# Alice locks her processing training and keeps the transaction open.
my $alice = $node->background_psql('db');
$alice->query_safe('SET ROLE alice');
$alice->query_safe('BEGIN');
$alice->query_safe("SELECT id FROM training.trainings WHERE id = '$held' FOR UPDATE");

# Bob's training starts within seconds, on the only worker there is.
my $t0 = time;
my $free = train_as('bob', 'free');
ok(wait_state($node, 'db', $free, 'processing|completed'), "bob's training starts while alice holds her lock");
my $waited = time - $t0;
note(sprintf("bob's training started after %.1f s", $waited));
ok($waited < 15, sprintf("bob's training started within 15 s (%.1f s)", $waited));
ok(wait_state($node, 'db', $free, 'completed'), "bob's training completes");
is($node->safe_psql('db', "SELECT state FROM training.trainings WHERE id = '$held'"), 'processing',
	"alice's training is still processing while she holds it");

# Released, the held training is queued again by recovery and completes.
$alice->query_safe('COMMIT');
$alice->quit;
ok(wait_state($node, 'db', $held, 'completed'), "alice's training completes once released");
is($node->safe_psql('db', "SELECT attempts FROM training.trainings WHERE id = '$held'"), '2',
	'it was queued again once (attempt 2)');
is($node->safe_psql('db', "SELECT count(*) FROM training.model_versions v JOIN training.models m ON m.id = v.model_id
                            WHERE m.name = 'held'"), '1', 'one version for it');
like(slurp_file($node->logfile), qr/its row stays locked by another session/, 'the log says why it was left');

# A training that fails while its owner holds its row: the failure is not waited for either.
# (Faces of 96 pixels are all smaller than min_face_size 500: the training fails after reading
# the 60 images, 2.4 s.)
my $failing = train_as('alice', 'failing', '{"min_face_size": 500}', 30);
ok(wait_state($node, 'db', $failing, 'processing'), "alice's failing training is processing");
$alice = $node->background_psql('db');
$alice->query_safe('SET ROLE alice');
$alice->query_safe('BEGIN');
$alice->query_safe("SELECT id FROM training.trainings WHERE id = '$failing' FOR UPDATE");
# The only worker takes bob's next training instead of waiting for alice.
$free = train_as('bob', 'free after failure');
ok(wait_state($node, 'db', $free, 'completed'), "bob's next training completes meanwhile");
$alice->query_safe('COMMIT');
$alice->quit;
ok(wait_state($node, 'db', $failing, 'failed'), "alice's training is failed once released");
like(slurp_file($node->logfile), qr/failed \(.*\), but another session holds its row/, 'the log says why it was left');

# DROP DATABASE by a role that does not own the database fails, and stops nothing there.
my $running = train_as('bob', 'not dropped', '{}', 30);
ok(wait_state($node, 'db', $running, 'processing'), "bob's training is processing");
my ($rc, $out, $err) = $node->psql('postgres', 'SET ROLE bob; DROP DATABASE db');
like($err, qr/must be owner of database db/, 'a role that does not own it cannot drop it');
ok(wait_state($node, 'db', $running, 'completed'), 'and the training there completes');
is($node->safe_psql('db', "SELECT attempts FROM training.trainings WHERE id = '$running'"), '1',
	'in its first attempt: its worker was not stopped');

$node->stop;
done_testing();
