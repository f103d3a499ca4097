# The embedding store is filled at upload on both cores: with more than a batch to measure, the
# background pass (oldest image up) gets a helper (newest image down), the two meet without
# measuring the same images, and a training created meanwhile is still taken at once. Images that
# cannot be kept are walked once per wake. With one worker allowed, the pass measures alone, in
# upload order, and makes room at once for a training of another database.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use TrainingTest;
use Time::HiRes qw(time usleep);

# 100 ms per image: a pass over 48 images lasts about 5 s, long enough for a second worker to start.
# No naptime poll: every wake here comes from a commit (a poll would walk the locked images again).
my $node = new_node('extract', 'training.max_workers' => 2, 'training.face_features' => "'classic'",
	'training.test_image_delay' => "'100ms'", 'training.naptime' => 3600);
setup_db($node, 'db');

# The images in upload order, with when their measurement was kept.
my $order = q{
	SELECT i.id, f.time_created AS kept, row_number() OVER (ORDER BY i.time_created, i.id) AS n
	  FROM training.images i JOIN training.image_features f ON f.image_id = i.id
	                                                     AND f.content_version = i.content_version};
my $all_kept = "SELECT count(*) = 48 FROM ($order) o";
# An image uploaded later was kept before one uploaded earlier: not one pass in upload order.
my $out_of_order = "SELECT EXISTS (SELECT FROM ($order) a, ($order) b WHERE a.n < b.n AND a.kept > b.kept)";

my $measuring = q{
	SELECT count(*) = 2 FROM pg_stat_activity
	 WHERE backend_type = 'training worker' AND datname = 'db' AND query LIKE 'training worker: measuring images%'};
my $ds = make_dataset($node, 'db', 'both ends', 4, 12);
ok(wait_for($node, 'db', $measuring), 'two workers measure the uploaded images at once');
ok(wait_for($node, 'db', $all_kept), 'every image gets its measurement kept');
is($node->safe_psql('db', $out_of_order), 't', 'the newest images were measured before the pass reached them');
ok(wait_for($node, 'db', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'training worker'}),
	'the workers leave when the store is full');
# Each walk measures only what the other has not fetched: no measurement is written twice.
is($node->safe_psql('db', q{SELECT n_tup_upd FROM pg_stat_user_tables WHERE relid = 'training.image_features'::regclass}),
	'0', 'the two walks do not measure the same images');

# A training created while both measure is taken at once (each worker looks between images).
$node->safe_psql('db', 'DELETE FROM training.datasets');
$ds = make_dataset($node, 'db', 'meanwhile', 4, 12);
ok(wait_for($node, 'db', $measuring), 'two workers measure again');
my $t = create_training($node, 'db', $ds, 'meanwhile');
ok(wait_state($node, 'db', $t, 'completed'), 'the training completes');
is( $node->safe_psql('db', "SELECT time_started - time_created < interval '3 s' FROM training.trainings WHERE id = '$t'"),
	't', 'and started within 3 s of its creation');
ok(wait_for($node, 'db', $all_kept), 'every image of that dataset is measured too');

# Images whose measurement cannot be kept (their rows locked by another session) are measured
# once per wake: the pass and its helper meet and stop; they do not swap roles and walk again.
my $workers_gone = q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'training worker'};
$node->safe_psql('db', 'DELETE FROM training.datasets');
$node->safe_psql('db', 'ALTER SYSTEM SET training.background_features = off; SELECT pg_reload_conf()');
my $locked = make_dataset($node, 'db', 'locked', 4, 6);
my $holder = $node->background_psql('db');
$holder->query_safe('BEGIN');
$holder->query_safe('SELECT id FROM training.images FOR NO KEY UPDATE');
$node->safe_psql('db', 'ALTER SYSTEM SET training.background_features = on; SELECT pg_reload_conf()');
# One image more wakes the workers: it is kept, the 24 others cannot be.
$node->safe_psql('db', qq{SELECT training.add_image(class_id => (SELECT id FROM training.classes WHERE dataset_id = '$locked' LIMIT 1),
                                                   data => test_pgm(99, 60))});
my $woke = time;
ok(wait_for($node, 'db', 'SELECT count(*) = 1 FROM training.image_features'), 'the image not locked is kept');
ok(wait_for($node, 'db', $workers_gone), 'the workers stop when the locked images cannot be kept');
# A round takes about 1.2 s (24 images of 100 ms on two workers), the workers' idle wait 2 s.
my $stopped = time - $woke;
ok($stopped < 20, sprintf('within seconds (%.1f s), after a round or two', $stopped));
my $back = 0;
for (1 .. 8)
{
	$back++ if $node->safe_psql('db', $workers_gone) eq 'f';
	usleep(500_000);
}
is($back, 0, 'and do not walk them again until the next wake');
$holder->query_safe('COMMIT');
$holder->quit;

# One worker allowed: no helper, the pass keeps the images in upload order.
$node->safe_psql('db', 'ALTER SYSTEM SET training.max_workers = 1; SELECT pg_reload_conf()');
$node->safe_psql('db', 'DELETE FROM training.datasets');
ok(wait_for($node, 'db', q{SELECT count(*) = 0 FROM pg_stat_activity WHERE backend_type = 'training worker'}),
	'the workers are gone');
make_dataset($node, 'db', 'one end', 4, 12);
ok(wait_for($node, 'db', $all_kept), 'with training.max_workers = 1 every image is measured too');
is($node->safe_psql('db', $out_of_order), 'f', 'by one pass, in upload order');

# A training in another database does not wait for the pass's turn (5 s) on the only worker:
# the pass makes room after the batch it measures.
setup_db($node, 'db2');
my $ds2 = make_dataset($node, 'db2', 'elsewhere', 2, 3);
ok(wait_for($node, 'db2', 'SELECT count(*) = 6 FROM training.image_features'), 'the other database is measured first');
$node->safe_psql('db', 'DELETE FROM training.datasets');
make_dataset($node, 'db', 'long pass', 8, 12);
ok( wait_for(
		$node, 'db', q{SELECT count(*) = 1 FROM pg_stat_activity
		                WHERE datname = 'db' AND query LIKE 'training worker: measuring images%'}),
	'the pass measures 96 images on the only worker');
my $t2 = create_training($node, 'db2', $ds2, 'elsewhere');
ok(wait_state($node, 'db2', $t2, 'completed'), 'the training in the other database completes');
is( $node->safe_psql('db2', "SELECT time_started - time_created < interval '3 s' FROM training.trainings WHERE id = '$t2'"),
	't', 'and started within 3 s of its creation');
ok(wait_for($node, 'db', $all_kept =~ s/= 48/= 96/r), 'the pass measures the rest afterwards');

$node->stop;
done_testing();
