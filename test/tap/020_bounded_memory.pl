# Memory of one image is bounded by training.max_image_pixels (issue 13): a 1x65535 and a
# 65535x1 grey PGM and a 7000x7000 colour JPEG (49 MP, under training.max_image_pixels =
# 50000000) through training.detect_faces, check_image, recognize, evaluate_dataset and
# trainings (face and landmark). Each call succeeds or fails with a clean 22023, never
# crashes the server, and the process that ran it (the backend, /proc/self/status of
# pg_backend_pid(); the training worker, /proc/PID/status) peaks (VmHWM) below 300 MB.
# Before the fix the detector's border retry alone took 9.3 GB for the 1x65535 image.
# The JPEG is written here (8x8 blocks of one colour each: DC coefficients only), so no
# image tool is needed. The deep paths run when the face networks are installed
# (make models install); without them detect_faces fails with 22023 as it should.
use strict;
use warnings;
use FindBin;
use lib $FindBin::RealBin;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use TrainingTest;

my $limit_kb = 300 * 1024;

# A w x h baseline colour JPEG whose 8x8 blocks each have one colour (DC coefficients only).
sub dc_jpeg
{
	my ($w, $h) = @_;
	my $seg = sub { my ($marker, $body) = @_; return pack('nn', $marker, 2 + length $body) . $body };
	my $j = pack('n', 0xFFD8);
	$j .= $seg->(0xFFDB, pack('C', 0) . pack('C64', 8, (1) x 63));	# DC / 8: one step per grey level
	$j .= $seg->(0xFFC0, pack('CnnC', 8, $h, $w, 3) . pack('C9', 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0));
	# DC table: categories 0..8 with 4-bit codes (code = category); AC table: end of block, code 0.
	$j .= $seg->(0xFFC4, pack('C', 0x00) . pack('C16', 0, 0, 0, 9, (0) x 12) . pack('C9', 0 .. 8));
	$j .= $seg->(0xFFC4, pack('C', 0x10) . pack('C16', 1, (0) x 15) . pack('C', 0));
	$j .= $seg->(0xFFDA, pack('C', 3) . pack('C6', 1, 0, 2, 0, 3, 0) . pack('C3', 0, 63, 0));
	my @prev = (0, 0, 0);
	my $bits = '';
	for my $by (0 .. int(($h + 7) / 8) - 1)
	{
		for my $bx (0 .. int(($w + 7) / 8) - 1)
		{
			my @level = (int(60 * sin($bx * 0.21) * cos($by * 0.17)) + ($bx * 7 + $by * 13) % 16, -20, 25);
			for my $c (0 .. 2)
			{
				my $d = $level[$c] - $prev[$c];
				my $s = 0;
				$prev[$c] = $level[$c];
				$s++ while (abs($d) >> $s) > 0;
				$bits .= substr(unpack('B8', pack('C', $s)), 4);
				$bits .= substr(unpack('B16', pack('n', $d > 0 ? $d : $d + (1 << $s) - 1)), 16 - $s) if $s;
				$bits .= '0';
			}
		}
	}
	$bits .= '1' x ((8 - length($bits) % 8) % 8);
	(my $scan = pack('B*', $bits)) =~ s/\xFF/\xFF\x00/g;
	return $j . $scan . pack('n', 0xFFD9);
}

sub grey_pgm
{
	my ($w, $h) = @_;
	return "P5\n$w $h\n255\n" . pack('C*', map { int(128 + 90 * sin($_ * 0.7)) + $_ * 7919 % 23 } 0 .. $w * $h - 1);
}

my $node = new_node('bounded', 'training.max_image_pixels' => 50000000,
	'training.worker_idle_timeout' => 4000);
my $db = 'postgres';
setup_db($node, $db);

# The images, loaded from files so that no session holds their text.
my %files = (tall => grey_pgm(1, 65535), wide => grey_pgm(65535, 1), big => dc_jpeg(7000, 7000));
$node->safe_psql($db, 'CREATE TABLE test_images (name text PRIMARY KEY, data bytea)');
for my $name (sort keys %files)
{
	my $path = "$PostgreSQL::Test::Utils::tmp_check/$name.img";
	open my $fh, '>:raw', $path or die "$path: $!";
	print $fh $files{$name};
	close $fh;
	$node->safe_psql($db, "INSERT INTO test_images VALUES ('$name', pg_read_binary_file('$path'))");
}
my @images = qw(tall wide big);
is($node->safe_psql($db, "SELECT string_agg(name || ' ' || length(data), ', ' ORDER BY name) FROM test_images"),
	'big ' . length($files{big}) . ', tall ' . length($files{tall}) . ', wide ' . length($files{wide}),
	'the images are stored');

# Run SQL in a session of its own; the result, SQLSTATE (or '') and the session's peak in kB.
sub session
{
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql($db, "\\set VERBOSITY verbose\n$sql;\n"
		  . "SELECT 'hwm ' || substring(pg_read_file('/proc/self/status') from 'VmHWM:\\s*(\\d+)');",
		stdout => \$out, stderr => \$err, on_error_stop => 0);
	my ($hwm) = $out =~ /^hwm (\d+)$/m;
	$out = join "\n", grep { !/^hwm \d+$/ } split /\n/, $out;
	my ($state) = $err =~ /ERROR:\s+([0-9A-Z]{5}):/;
	return ($out, $state // ($err =~ /\S/ ? $err : ''), $hwm);
}

# One call on one image: a result or a clean 22023, below the memory limit.
sub bounded_call
{
	my ($what, $name, $expr, $must_succeed) = @_;
	my ($out, $state, $hwm) = session("SELECT ($expr) IS NOT NULL FROM test_images WHERE name = '$name'");
	if ($must_succeed)
	{
		is($state, '', "$what on $name succeeds");
	}
	else
	{
		ok($state eq '' || $state eq '22023', "$what on $name: a result or 22023 ($state)");
	}
	is($out, 't', "$what on $name returns a result") if $state eq '';
	ok(defined $hwm && $hwm < $limit_kb,
		"$what on $name: backend peak " . (defined $hwm ? int($hwm / 1024) : '?') . " MB below 300 MB");
	return;
}

# A small face model to recognize with.
my $small = make_dataset($node, $db, 'small', 2, 4);
my $t0 = create_training($node, $db, $small, 'small');
ok(wait_state($node, $db, $t0, 'completed|failed'), 'the small training finished');
is(state_of($node, $db, $t0), 'completed', 'the small model is trained');
my $deep = $node->safe_psql($db, qq{
	SELECT mv.metrics->>'feature_kind' LIKE 'face-api-resnet-%' FROM training.model_versions mv
	JOIN training.models mo ON mo.id = mv.model_id WHERE mo.name = 'small'}) eq 't';
note($deep ? 'face networks installed: deep paths' : 'no face networks: classic paths');

for my $name (@images)
{
	bounded_call('detect_faces', $name, 'training.detect_faces(data)', $deep);
	bounded_call('check_image face', $name, "training.check_image(data, NULL, 'face')", 1);
	bounded_call('check_image face (lenient)', $name,
		qq{training.check_image(data, NULL, 'face', '{"min_face_size": 1, "sharpness_threshold": 0}')}, 1);
	bounded_call('check_image landmark', $name, "training.check_image(data, NULL, 'landmark')", 1);
	bounded_call('recognize', $name, "training.recognize('small', data)", 1);
}

# Datasets holding the three images next to small ones: storing (the insert trigger decodes),
# evaluating and training them.
my %trained;
for my $type (qw(face landmark))
{
	my ($out, $state, $hwm) = session(qq{
		DO \$\$
		DECLARE ds uuid; cl uuid;
		BEGIN
		  ds := (training.create_dataset(name => '$type large', type => '$type')->>'id')::uuid;
		  FOR c IN 1..2 LOOP
		    cl := (training.create_class(dataset_id => ds, label => 'class ' || c)->>'id')::uuid;
		    FOR i IN 1..3 LOOP
		      PERFORM training.add_image(class_id => cl, data => test_pgm(i + c * 100, (c - 1) * 60));
		    END LOOP;
		    IF c = 1 THEN
		      PERFORM training.add_image(class_id => cl, data => data) FROM test_images ORDER BY name;
		    END IF;
		  END LOOP;
		END \$\$});
	is($state, '', "the $type dataset with the large images is stored");
	ok(defined $hwm && $hwm < $limit_kb, "storing the $type dataset: backend peak "
		  . (defined $hwm ? int($hwm / 1024) : '?') . ' MB below 300 MB');
	my $ds = $node->safe_psql($db, "SELECT id FROM training.datasets WHERE name = '$type large'");
	my $config = $type eq 'face' ? '{"min_face_size": 1, "sharpness_threshold": 0}' : '{}';

	($out, $state, $hwm) = session("SELECT training.evaluate_dataset('$ds', '$config')->'evaluation_result'->>'images_checked'");
	is("$state|$out", '|9', "evaluate_dataset of the $type dataset checks its 9 images");
	ok(defined $hwm && $hwm < $limit_kb, "evaluate_dataset ($type): backend peak "
		  . (defined $hwm ? int($hwm / 1024) : '?') . ' MB below 300 MB');

	# The training: the worker's peak, watched until the worker (idle afterwards) is read once more.
	my $id = $node->safe_psql($db,
		"SELECT training.create_training(source_dataset_id => '$ds', output_model_name => '$type large', "
		  . "config => '$config')->>'id'");
	my (%peak, $done);
	for (my $i = 0; $i < 6000 && !$done; $i++)
	{
		$done = $node->safe_psql($db, "SELECT state IN ('completed', 'failed') FROM training.trainings WHERE id = '$id'") eq 't';
		for my $pid (split /\n/, $node->safe_psql($db,
			"SELECT pid FROM pg_stat_activity WHERE backend_type = 'training worker'"))
		{
			if (open my $fh, '<', "/proc/$pid/status")
			{
				local $/;
				my ($kb) = <$fh> =~ /VmHWM:\s*(\d+)/;
				$peak{$pid} = $kb if defined $kb && $kb > ($peak{$pid} // 0);
			}
		}
		usleep(50_000) unless $done;
	}
	is($node->safe_psql($db, "SELECT state || coalesce(': ' || nullif(error, ''), '') FROM training.trainings WHERE id = '$id'"),
		'completed', "the $type training with the large images completed");
	my ($worst) = sort { $b <=> $a } values %peak;
	ok(defined $worst && $worst < $limit_kb, "the $type training: worker peak "
		  . (defined $worst ? int($worst / 1024) : '?') . ' MB below 300 MB');
	$trained{$type} = $node->safe_psql($db, qq{
		SELECT mv.metrics->>'images_used' FROM training.model_versions mv
		JOIN training.models mo ON mo.id = mv.model_id WHERE mo.name = '$type large'});
}
is($trained{landmark}, 9, 'the landmark training used all 9 images, the large ones too');
is($trained{face}, 9, 'the lenient face training used all 9 images, the large ones too');

# Nothing crashed.
is($node->safe_psql($db, 'SELECT 1'), '1', 'the server is up');
unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated/,
	'no process crashed');

$node->stop;
done_testing();
