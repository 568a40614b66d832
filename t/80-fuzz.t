# Runs the libFuzzer targets (host normalisation, admin API parsing and
# validation, blueprint loading, tenant_jwt's tokens) for FUZZ_SECONDS each (60 by default).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;

my $secs = $ENV{FUZZ_SECONDS} // 60;
my ($rc, $out) = Tenant::Test::run_cmd("$Tenant::Test::TOP/auto/fuzz", $secs);
diag($out);
is($rc, 0, "every fuzzer ran $secs s without a crash, leak or undefined behaviour");
for my $target (qw(host api blueprint jwt)) {
    like($out, qr/^fuzz_$target\s+ok: [1-9]\d* runs/m, "fuzz_$target executed inputs");
}

done_testing();
