# Helpers of the Perl TAP tests: a cluster with the extension preloaded, generated datasets,
# trainings and waits.
package TrainingTest;

use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);
use Exporter 'import';

our @EXPORT = qw(new_node setup_db make_dataset create_training wait_state wait_for
  state_of training_worker_pid);

# A started cluster with shared_preload_libraries = 'training' and the extra settings given.
sub new_node
{
	my ($name, %conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	my $extra = join '', map { "$_ = $conf{$_}\n" } sort keys %conf;
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = 'training'\nmax_worker_processes = 16\nrestart_after_crash = on\n"
		  . "log_line_prefix = '%m [%p] %b '\n$extra");
	$node->start;
	return $node;
}

# Create a database (unless it is 'postgres') with the extension and the image helper.
sub setup_db
{
	my ($node, $db) = @_;
	$node->safe_psql('postgres', "CREATE DATABASE $db") unless $db eq 'postgres';
	$node->safe_psql($db, q{
		CREATE EXTENSION training;
		-- A 96x96 grey PGM whose texture depends on seed and brightness on base: sharp,
		-- large enough for the default face filters, and different per class.
		CREATE FUNCTION test_pgm(seed int, base int) RETURNS bytea LANGUAGE sql AS $$
		  SELECT convert_to('P5 96 96 255' || chr(10), 'SQL_ASCII')
		      || decode(string_agg(lpad(to_hex(least(255, $2 + ((i::bigint * i * 31 + i * $1 * 7 + $1 * 1013) % 101)::int)), 2, '0'), ''
		                           ORDER BY i), 'hex')
		  FROM generate_series(0, 96 * 96 - 1) AS i
		$$;
	});
	return;
}

# A face dataset with nclasses classes of nimages generated images each; returns its id.
sub make_dataset
{
	my ($node, $db, $name, $nclasses, $nimages) = @_;
	return $node->safe_psql($db, qq{
		DO \$\$
		DECLARE ds uuid; cl uuid;
		BEGIN
		  ds := (training.create_dataset(name => '$name', type => 'face')->>'id')::uuid;
		  FOR c IN 1..$nclasses LOOP
		    cl := (training.create_class(dataset_id => ds, label => 'person ' || c,
		                                 reference => 'p' || c)->>'id')::uuid;
		    FOR i IN 1..$nimages LOOP
		      PERFORM training.add_image(class_id => cl, data => test_pgm(i + c * 1000, (c - 1) * 60));
		    END LOOP;
		  END LOOP;
		  PERFORM set_config('test.ds', ds::text, false);
		END \$\$;
		SELECT current_setting('test.ds');
	});
}

sub create_training
{
	my ($node, $db, $ds, $model) = @_;
	return $node->safe_psql($db,
		"SELECT training.create_training(source_dataset_id => '$ds', output_model_name => '$model')->>'id'");
}

sub state_of
{
	my ($node, $db, $id) = @_;
	return $node->safe_psql($db, "SELECT state FROM training.trainings WHERE id = '$id'");
}

# Wait until the training is in one of the states (alternatives separated by |).
sub wait_state
{
	my ($node, $db, $id, $states) = @_;
	my $list = join ',', map { "'$_'" } split /\|/, $states;
	return wait_for($node, $db,
		"SELECT state IN ($list) FROM training.trainings WHERE id = '$id'");
}

# Wait until a query returns 't'. poll_query_until dies ("Broken pipe") when its psql exits before
# reading the query, as it does while the server restarts after a crash: try again until the
# usual timeout.
sub wait_for
{
	my ($node, $db, $query) = @_;
	my $deadline = time + $PostgreSQL::Test::Utils::timeout_default;
	while (time < $deadline)
	{
		my $ok = eval { $node->poll_query_until($db, $query) };
		return $ok if defined $ok;
		sleep 1;
	}
	return 0;
}

sub training_worker_pid
{
	my ($node, $db, $id) = @_;
	return $node->safe_psql($db,
		"SELECT worker_pid FROM training.trainings WHERE id = '$id' AND state = 'processing'");
}

1;
