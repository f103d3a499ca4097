# The deep face pipeline through SQL, as a user meets it: ORL faces (from
# ../shared/data, never committed) trained with the detector + 128-d
# embedding; blurred and too small faces skipped by reason; recognition of
# held-out faces and of a scene with two people; the classic fallback and
# the error when the networks are missing.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use TrainingTest;

my $orl;
for my $d (grep { defined } $ENV{TRAINING_SHARED_DATA}, '../shared/data', '../../shared/data', '/work/shared/data')
{
	if (-r "$d/faces-orl/s1/1.pgm") { $orl = "$d/faces-orl"; last; }
}
plan skip_all => 'ORL faces (../shared/data/faces-orl) not found' unless $orl;

sub read_pgm
{
	my ($path) = @_;
	open my $fh, '<:raw', $path or die "$path: $!";
	local $/;
	my $b = <$fh>;
	$b =~ s/^P5\s+(\d+)\s+(\d+)\s+(\d+)\s//s or die "not a P5 PGM: $path";
	return { w => $1, h => $2, px => [ unpack 'C*', substr($b, 0, $1 * $2) ] };
}

sub pgm_bytes
{
	my ($img) = @_;
	return "P5\n$img->{w} $img->{h}\n255\n" . pack('C*', @{ $img->{px} });
}

sub hex_of { return unpack 'H*', pgm_bytes($_[0]) }

# Box blur of radius r, repeated.
sub blur
{
	my ($img, $r, $times) = @_;
	my ($w, $h, @p) = ($img->{w}, $img->{h}, @{ $img->{px} });
	for (1 .. $times)
	{
		my @q;
		for my $y (0 .. $h - 1)
		{
			for my $x (0 .. $w - 1)
			{
				my ($s, $n) = (0, 0);
				for my $dy (-$r .. $r)
				{
					my $yy = $y + $dy;
					next if $yy < 0 || $yy >= $h;
					for my $dx (-$r .. $r)
					{
						my $xx = $x + $dx;
						next if $xx < 0 || $xx >= $w;
						$s += $p[ $yy * $w + $xx ];
						$n++;
					}
				}
				$q[ $y * $w + $x ] = int($s / $n + 0.5);
			}
		}
		@p = @q;
	}
	return { w => $w, h => $h, px => \@p };
}

# Half size by 2x2 averaging.
sub halve
{
	my ($img) = @_;
	my ($w, $h) = (int($img->{w} / 2), int($img->{h} / 2));
	my @p;
	for my $y (0 .. $h - 1)
	{
		for my $x (0 .. $w - 1)
		{
			my $s = 0;
			$s += $img->{px}[ (2 * $y + $_->[0]) * $img->{w} + 2 * $x + $_->[1] ] for ([0, 0], [0, 1], [1, 0], [1, 1]);
			$p[ $y * $w + $x ] = int($s / 4 + 0.5);
		}
	}
	return { w => $w, h => $h, px => \@p };
}

# Faces pasted on a generated background.
sub scene
{
	my ($w, $h, @faces) = @_;
	my @p = map { my $y = int($_ / $w); my $x = $_ % $w; int(60 + 100 * $x / $w + 40 * (($x * 7 + $y * 13) % 17) / 17) } 0 .. $w * $h - 1;
	for my $f (@faces)
	{
		my ($img, $fx, $fy) = @$f;
		for my $y (0 .. $img->{h} - 1)
		{
			for my $x (0 .. $img->{w} - 1)
			{
				$p[ ($fy + $y) * $w + $fx + $x ] = $img->{px}[ $y * $img->{w} + $x ];
			}
		}
	}
	return { w => $w, h => $h, px => \@p };
}

my $node = new_node('deep');
my $db = 'postgres';
setup_db($node, $db);
is($node->safe_psql($db, 'SHOW training.face_features'), 'auto', 'training.face_features defaults to auto');

my $classes = 8;
my $sql = "SELECT set_config('test.ds', (training.create_dataset(name => 'orl deep', type => 'face')->>'id'), false);\n";
for my $c (1 .. $classes)
{
	$sql .= "SELECT set_config('test.c$c', (training.create_class(dataset_id => current_setting('test.ds')::uuid, "
	  . "label => 's$c', reference => 'person $c')->>'id'), false);\n";
	for my $i (1 .. 5)
	{
		my $hex = hex_of(read_pgm("$orl/s$c/$i.pgm"));
		$sql .= "SELECT 1 FROM training.add_image(class_id => current_setting('test.c$c')::uuid, data => decode('$hex', 'hex'));\n";
	}
}
# A blurred face and a face too small for min_face_size 50.
my $blurred = blur(read_pgm("$orl/s1/6.pgm"), 3, 3);
my $small = halve(read_pgm("$orl/s2/6.pgm"));
$sql .= "SELECT 1 FROM training.add_image(class_id => current_setting('test.c1')::uuid, data => decode('" . hex_of($blurred) . "', 'hex'));\n";
$sql .= "SELECT 1 FROM training.add_image(class_id => current_setting('test.c2')::uuid, data => decode('" . hex_of($small) . "', 'hex'));\n";
$sql .= "SELECT current_setting('test.ds');\n";
my @out = split /\n/, $node->safe_psql($db, $sql);
my $ds = $out[-1];

sub train
{
	my ($model) = @_;
	my $id = $node->safe_psql($db,
		"SELECT training.create_training(source_dataset_id => '$ds', output_model_name => '$model', "
		  . "config => '{\"min_face_size\": 50}')->>'id'");
	ok(wait_state($node, $db, $id, 'completed|failed'), "training $model finished");
	return $id;
}

my $t1 = train('orl deep');
is($node->safe_psql($db, "SELECT state || coalesce(': ' || nullif(error, ''), '') FROM training.trainings WHERE id = '$t1'"),
	'completed', 'the deep face training completed');
my $m = $node->safe_psql($db, qq{
	SELECT concat_ws(' ', metrics->>'feature_kind', metrics->>'feature_dim', metrics->>'images_used',
	                 metrics->'images_skipped'->>'below_sharpness_threshold',
	                 metrics->'images_skipped'->>'smaller_than_min_face_size')
	FROM training.model_versions mv JOIN training.models mo ON mo.id = mv.model_id WHERE mo.name = 'orl deep'});
my ($kind, $dim, $used, $blurry, $small_n) = split / /, $m;
is($kind, 'face-api-resnet-aligned-v1', 'auto picked the aligned deep features (models installed)');
is($dim, 128, '128-d embedding');
cmp_ok($used, '>=', $classes * 5 - 4, "most ORL faces used ($used)");
cmp_ok($blurry, '>=', 1, 'the blurred face is skipped below sharpness_threshold');
cmp_ok($small_n, '>=', 1, 'the half-size face is skipped below min_face_size');

# Dataset evaluation counts the genders of the usable faces.
is($node->safe_psql($db, qq{
	SELECT (e->'gender_statistics'->>'male')::int + (e->'gender_statistics'->>'female')::int = (e->>'images_usable')::int
	       AND (e->'gender_statistics'->>'male')::int > 0
	FROM (SELECT training.evaluate_dataset('$ds', '{"min_face_size": 50}')->'evaluation_result' AS e) x}),
	't', 'evaluate_dataset fills gender_statistics for every usable face');

# detect_faces: both people of a photo, larger box first, with a gender each.
{
	my $photo = scene(420, 260, [ read_pgm("$orl/s3/9.pgm"), 40, 60 ], [ read_pgm("$orl/s6/9.pgm"), 260, 100 ]);
	my $r = $node->safe_psql($db, "SELECT (f->'box'->>'x')::int, f->>'gender' IN ('male', 'female') "
		  . "AND (f->>'gender_probability')::float8 BETWEEN 0.5 AND 1 "
		  . "FROM jsonb_array_elements(training.detect_faces(decode('" . hex_of($photo) . "', 'hex'))->'faces') f ORDER BY 1");
	my @rows = split /\n/, $r;
	is(scalar @rows, 2, 'detect_faces finds the two faces of the photo');
	like($rows[0] // '', qr/^(2\d|3\d|4\d|5\d|6\d)\|t$/, "the first face is on the left ($rows[0])");
	like($rows[1] // '', qr/^2[4-7]\d\|t$/, "the second face is on the right ($rows[1])");

	# Each face has 68 landmarks inside its box, eyes above the mouth, and the aligned square.
	is($node->safe_psql($db, "SELECT bool_and(jsonb_array_length(f->'landmarks') = 68 "
		  . "AND (f->'landmarks'->36->>1)::float8 < (f->'landmarks'->51->>1)::float8 "
		  . "AND (f->'landmarks'->30->>0)::float8 BETWEEN (f->'box'->>'x')::int "
		  . "AND (f->'box'->>'x')::int + (f->'box'->>'width')::int "
		  . "AND (f->'aligned_box'->>'width')::int BETWEEN 20 AND 120) "
		  . "FROM jsonb_array_elements(training.detect_faces(decode('" . hex_of($photo) . "', 'hex'))->'faces') f"),
		't', 'detect_faces gives each face its 68 landmarks and aligned square');
}

SKIP:
{
	skip 'training.recognize is not installed yet', 4
	  unless $node->safe_psql($db, "SELECT count(*) FROM pg_proc WHERE proname = 'recognize'") > 0;

	# Held-out faces: images 6..10 of each class.
	my ($right, $total) = (0, 0);
	for my $c (1 .. $classes)
	{
		for my $i (7 .. 10)
		{
			my $hex = hex_of(read_pgm("$orl/s$c/$i.pgm"));
			my $label = $node->safe_psql($db,
				"SELECT training.recognize('orl deep', decode('$hex', 'hex'))->'detections'->0->>'label'");
			$right++ if $label eq "s$c";
			$total++;
		}
	}
	cmp_ok($right / $total, '>=', 0.9, "held-out ORL faces recognized: $right of $total");

	# Two people in one photo: one detection each.
	my $photo = scene(420, 260, [ read_pgm("$orl/s3/9.pgm"), 40, 60 ], [ read_pgm("$orl/s6/9.pgm"), 260, 100 ]);
	my $r = $node->safe_psql($db, "SELECT d->>'label', (d->>'distance')::float8 < 1, (d->'box'->>'x')::int "
		  . "FROM jsonb_array_elements(training.recognize('orl deep', decode('" . hex_of($photo) . "', 'hex'))->'detections') d "
		  . "ORDER BY 3");
	my @rows = split /\n/, $r;
	is(scalar @rows, 2, 'two faces in the photo, two detections');
	like($rows[0] // '', qr/^s3\|t\|/, 'the left face is s3, within max_distance');
	like($rows[1] // '', qr/^s6\|t\|/, 'the right face is s6, within max_distance');
}

# A model trained before the landmark network was installed keeps its
# unaligned kind and keeps recognizing after it is installed.
{
	my $share = $node->config_data('--sharedir') . '/extension/training_models';
	my $old = PostgreSQL::Test::Utils::tempdir();
	for my $f (glob "$share/*")
	{
		next if $f =~ /face_landmark_68/;
		PostgreSQL::Test::Utils::system_or_bail('cp', $f, $old);
	}
	$node->safe_psql($db, "ALTER SYSTEM SET training.model_path = '$old'");
	$node->reload;
	train('orl unaligned');
	$node->safe_psql($db, "ALTER SYSTEM RESET training.model_path");
	$node->reload;
	is($node->safe_psql($db, qq{
		SELECT mv.metrics->>'feature_kind' FROM training.model_versions mv
		JOIN training.models mo ON mo.id = mv.model_id WHERE mo.name = 'orl unaligned'}),
		'face-api-resnet-v1', 'without the landmark network auto picks the unaligned kind');
	my $hex = hex_of(read_pgm("$orl/s3/9.pgm"));
	is($node->safe_psql($db, "SELECT training.recognize('orl unaligned', decode('$hex', 'hex'))->'detections'->0->>'label'"),
		's3', 'the unaligned model still recognizes with its own kind');
}

# The classic features on request.
$node->safe_psql($db, "ALTER SYSTEM SET training.face_features = 'classic'");
$node->reload;
my $t2 = train('orl classic');
is($node->safe_psql($db, qq{
	SELECT mv.metrics->>'feature_kind' FROM training.model_versions mv
	JOIN training.models mo ON mo.id = mv.model_id WHERE mo.name = 'orl classic'}),
	'face-lbp-hog-v1', 'training.face_features = classic trains the classic features');

# Deep features without the networks: a clear failure.
$node->safe_psql($db, "ALTER SYSTEM SET training.face_features = 'deep'");
$node->safe_psql($db, "ALTER SYSTEM SET training.model_path = '/nonexistent/models'");
$node->reload;
my $t3 = train('orl missing');
like($node->safe_psql($db, "SELECT state || ': ' || coalesce(error, '') FROM training.trainings WHERE id = '$t3'"),
	qr{^failed: .*face networks unavailable in "/nonexistent/models".*face_recognition_model-weights_manifest\.json},
	'missing model files fail the training with a message naming them');

$node->stop;
done_testing();
