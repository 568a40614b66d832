# Runs the C unit tests (built by auto/build) under prove.
use strict;
use warnings;
use FindBin;
use Test::More;

my @bins = sort glob("$FindBin::Bin/../build/t/test_*");
BAIL_OUT('no C unit tests in build/t: run auto/build') unless @bins;

for my $bin (@bins) {
    my $out = `$bin 2>&1`;
    my $rc = $? >> 8;
    my ($plan) = $out =~ /^1\.\.(\d+)/m;
    my $ok = () = $out =~ /^ok \d+/mg;
    my @bad = $out =~ /^(not ok .*)$/mg;
    ok($plan && $ok == $plan && !@bad && $rc == 0,
       "$bin: $ok/" . ($plan // '?') . " passed")
        or diag($out);
}

done_testing();
