#!/usr/bin/perl
# Check psql's output of the README tour against the tour's own promises (see run.sh), and
# write the output with uuids, times and source locations masked, for expected.out.
#   check.pl TOUR.sql RAW_OUTPUT MASKED_OUTPUT [README_LINE_OFFSET]
# The output of `psql -a` is the tour's non-blank lines, echoed in order, with each statement's
# output (results, notices, errors) after the line that ends it; the two are told apart by
# walking both in step.
use strict;
use warnings;

my ($sqlfile, $rawfile, $maskedfile, $offset) = @ARGV;
$offset //= 0;    # README.md line of the tour's first line, less one
sub slurp { my ($f) = @_; open(my $h, '<', $f) or die "$f: $!"; my @l = <$h>; chomp @l; return @l; }
my @all = slurp($sqlfile);
my @num = grep { $all[$_] !~ /^\s*$/ } 0 .. $#all;    # input line => line of the tour
my @in  = @all[@num];
sub at { return "README.md:" . ($num[$_[0]] + 1 + $offset); }
my @out = slurp($rawfile);
my $arrow = "-- \xe2\x86\x92 ";    # "-- → " in UTF-8
my ($n, $failed) = (0, 0);
sub result {
    my ($ok, $what) = @_;
    $n++;
    $failed++ unless $ok;
    print(($ok ? "ok" : "not ok") . " $n - $what\n");
    return $ok;
}

# Align: $after[$k] holds the output lines that follow the echo of input line $k.
my ($j, @before, @after) = (0);
for my $line (@out) {
    if ($j < @in && $line eq $in[$j]) { $j++; next; }
    if ($j == 0) { push @before, $line; } else { push @{ $after[$j - 1] }, $line; }
}
result($j == @in, "psql echoed all " . scalar(@in) . " lines of the tour (stopped after $j)");
result(!@before, "no output before the first statement") or print map { "#   $_\n" } @before;

my $is_comment = sub { $_[0] =~ /^\s*--/ };
my $norm = sub { my $s = join("\n", @_); $s =~ s/[ \t]+/ /g; $s =~ s/^ //mg; $s =~ s/ $//mg; return $s; };
my $stmt_of = sub {    # the last non-comment line before input line $k: where its output is
    my ($k) = @_;
    $k-- while $k > 0 && $is_comment->($in[$k - 1]);
    return $k - 1;
};
my $first_of = sub {   # the first line of the statement that ends at input line $s
    my ($s) = @_;
    $s-- while $s > 0 && !$is_comment->($in[$s - 1]) && $in[$s - 1] !~ /(;|\\gset)\s*$|^\s*\\/;
    return $s;
};

my %promised_error;
my ($errors, $completed, $labels) = (0, 0, 0);
for my $k (0 .. $#in) {
    next unless index($in[$k], $arrow) == 0;
    my $want = substr($in[$k], length($arrow));
    my $s = $stmt_of->($k);
    my @block = $s >= 0 && $after[$s] ? @{ $after[$s] } : ();
    my $where = at($k) . ": " . ($s >= 0 ? $in[$first_of->($s)] : "(nothing)");
    if ($want =~ /^ERROR ([0-9A-Z]{5})(?::\s*(.*))?$/) {
        my ($code, $msg) = ($1, $2);
        $promised_error{$s} = 1;
        $errors++;
        my @got = grep { /^(?:psql:\S+:\d+: )?ERROR:  $code: / } @block;
        my $ok = @got && (!defined $msg || index($got[0], $msg) >= 0);
        result($ok, "$where\n#   fails with $code" . (defined $msg ? ": $msg" : ""));
        print map { "#   got: $_\n" } grep { /ERROR:/ } @block unless $ok;
    } else {
        my $ok = index($norm->(@block), $norm->($want)) >= 0;
        $completed++ if $ok && $want =~ /\bcompleted\b/;
        $labels++ if $ok && $in[$s] =~ /\brecognize\(/;
        result($ok, "$where\n#   shows: $want");
        print map { "#   got: $_\n" } @block unless $ok;
    }
}
# No error that the tour does not promise; nothing that stops a client.
for my $s (0 .. $#in) {
    my @err = grep { /^(?:psql:\S+:\d+: )?(ERROR|FATAL|PANIC):|^psql: error/ } @{ $after[$s] || [] };
    next if !@err || $promised_error{$s};
    result(0, at($s) . ": " . $in[$first_of->($s)] . "\n#   unexpected: $err[0]");
}
# The tour keeps showing what a newcomer needs.
my $text = join("\n", grep { !$is_comment->($_) } @in);
my $classes = () = $text =~ /training\.create_class\(/g;
result($classes >= 2, "the tour creates two classes or more ($classes)");
result($completed >= 1, "a training is shown completed");
result($labels >= 1, "recognize() is shown giving a label");
result($text =~ /training\.get_model\(/, "the tour calls get_model");
result($text =~ /training\.list_trainings\(/, "the tour calls list_trainings");
result($errors >= 3, "the tour promises three errors or more ($errors)");
result($text !~ /\\watch/, "no \\watch outside comments (it never ends)");
result($text !~ /pg_read_binary_file|pg_read_file/, "no server-side file reads (superuser only)");

# The output for expected.out.
open(my $m, '>', $maskedfile) or die "$maskedfile: $!";
for (@out) {
    next if /^LOCATION:  /;
    my $l = $_;
    $l =~ s/^psql:\S+:\d+: //;
    $l =~ s/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g;
    $l =~ s/\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d(?::\d\d)?)?/<time>/g;
    print $m "$l\n";
}
close $m;
print $failed ? "# $failed of $n checks failed\n" : "# all $n checks passed\n";
exit($failed ? 1 : 0);
