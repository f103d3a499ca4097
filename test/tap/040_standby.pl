# Streaming replication: a hot standby serves recognize(), detect_faces() (when the networks are
# installed) and the reads, refuses writes with a clear error, and runs no launcher; after the
# primary is lost and the standby promoted, the launcher starts there, the training that was
# processing on the lost primary is queued again and completes, and new trainings run.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use TrainingTest;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf('postgresql.conf',
	"shared_preload_libraries = 'training'\nmax_worker_processes = 16\n"
	  . "training.background_features = off\nlog_line_prefix = '%m [%p] %b '\n");
$primary->start;
setup_db($primary, 'db');
my $ds = make_dataset($primary, 'db', 'people', 3, 4);
my $t1 = create_training($primary, 'db', $ds, 'm');
ok(wait_state($primary, 'db', $t1, 'completed'), 'a model is trained on the primary');

$primary->backup('b');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'b', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

# Reads and recognition on the standby.
is($standby->safe_psql('db', "SELECT pg_is_in_recovery()"), 't', 'the standby is in recovery');
is($standby->safe_psql('db', "SELECT training.get_training('$t1') ->> 'state'"), 'completed',
	'get_training on the standby');
is($standby->safe_psql('db', "SELECT (training.list_trainings() -> 'total')::int"), '1',
	'list_trainings on the standby');
is($standby->safe_psql('db', "SELECT training.recognize('m', test_pgm(3 + 2 * 1000, 60), max_distance => 2) -> 'detections' -> 0 ->> 'label'"),
	'person 2', 'recognize() on the standby');
my ($nrc) = $standby->psql('db',
	q{SELECT training.detect_faces(convert_to('P5 8 8 255' || chr(10), 'SQL_ASCII') || decode(repeat('80', 64), 'hex'))});
my ($drc, $dout, $derr) = $standby->psql('db', q{SELECT training.detect_faces(test_pgm(1, 60)) IS NOT NULL});
if ($nrc == 0) { is($dout, 't', 'detect_faces() on the standby'); }
else { isnt($derr, '', 'detect_faces() without networks says why, on the standby too'); }
my ($rc, $out, $err) = $standby->psql('db',
	"SELECT training.create_training(source_dataset_id => '$ds', output_model_name => 'x')");
like($err, qr/read-only transaction/, 'a write on the standby is refused: read-only transaction (25006)');
is($standby->safe_psql('db',
	"SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'training%'"), '0',
	'no training launcher or worker runs on the standby');

# A training processing on the primary when it is lost.
$primary->safe_psql('db', "ALTER SYSTEM SET training.test_image_delay = 400; SELECT pg_reload_conf()");
my $t2 = create_training($primary, 'db', $ds, 'm');
ok(wait_for($primary, 'db', "SELECT state = 'processing' AND progress > 0 FROM training.trainings WHERE id = '$t2'"),
	'a training runs on the primary');
$primary->wait_for_catchup($standby);
is($standby->safe_psql('db', "SELECT state FROM training.trainings WHERE id = '$t2'"), 'processing',
	'the standby sees it processing');
$primary->stop('immediate');
$standby->promote;

ok(wait_state($standby, 'db', $t2, 'completed'),
	'after promotion the training lost with the primary is queued again and completes');
is($standby->safe_psql('db', "SELECT attempts FROM training.trainings WHERE id = '$t2'"), '2',
	'as its second attempt');
like($standby->safe_psql('db', q{SELECT string_agg(backend_type, ',') FROM pg_stat_activity WHERE backend_type = 'training launcher'}),
	qr/training launcher/, 'the launcher runs on the promoted standby');
my $t3 = create_training($standby, 'db', $ds, 'm');
ok(wait_state($standby, 'db', $t3, 'completed'), 'a new training completes on the new primary');
is($standby->safe_psql('db', "SELECT string_agg(version_number::text, ',' ORDER BY version_number) FROM training.model_versions"),
	'1,2,3', 'the model has versions 1, 2 and 3');

done_testing();
