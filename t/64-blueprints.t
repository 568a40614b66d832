# Blueprints are validated on load: broken ones are refused with errors
# naming the file and the field; good ones in the same directory load.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;

my $t = Tenant::Test->new;
my $dir = $t->dir . '/bp';
mkdir $dir;

my ($rc, $out) = Tenant::Test::run_cmd("$Tenant::Test::BUILD/provisioner", 'blueprints', 'check', "$Tenant::Test::TOP/blueprints");
is($rc, 0, 'the shipped blueprints are valid');
like($out, qr/6 blueprint\(s\) valid, 0 refused/, 'all six');

my $good = '{"name":"good","drivers":["process"],"modes":["dedicated"],"themes":["default"],'
    . '"roles":{"site":"web"},"services":{"web":{"command":["true"]}}}';
my %broken = (
    'syntax'    => ['{"name": "syntax",', qr/syntax\.json: line \d+/],
    'noname'    => ['{"drivers":["process"]}', qr/noname\.json: name: must be/],
    'mismatch'  => [$good =~ s/"good"/"other"/r, qr/mismatch\.json: name: "other" does not match the file name "mismatch"/],
    'driver'    => [$good =~ s/"name":"good"/"name":"driver"/r =~ s/\["process"\]/["kubernetes"]/r, qr/driver\.json: drivers\[0\]: unknown value "kubernetes"/],
    'nocommand' => [$good =~ s/"name":"good"/"name":"nocommand"/r =~ s/"command":\["true"\]/"env":{}/r, qr/nocommand\.json: services\.web\.command: required by the process driver/],
    'badrole'   => [$good =~ s/"name":"good"/"name":"badrole"/r =~ s/"site":"web"/"site":"db"/r, qr/badrole\.json: roles\.site: no such service/],
    'traversal' => [$good =~ s/"name":"good"/"name":"traversal"/r =~ s/"command":\["true"\]/"command":["true"],"files":{"..\/..\/etc\/x":"a"}/r, qr/traversal\.json: services\.web\.files\.\.\.\/\.\.\/etc\/x: paths must be relative/],
    'unknown'   => [$good =~ s/"name":"good"/"name":"unknown"/r =~ s/"themes"/"colour":"red","themes"/r, qr/unknown\.json: colour: unknown field/],
    'badenv'    => [$good =~ s/"name":"good"/"name":"badenv"/r =~ s/"command":\["true"\]/"command":["true"],"env":{"A":1}/r, qr/badenv\.json: services\.web\.env\.A: must be a string/],
    'health'    => [$good =~ s/"name":"good"/"name":"health"/r =~ s/"command":\["true"\]/"command":["true"],"health":{"path":"nope"}/r, qr/health\.json: services\.web\.health\.path: must start with \//],
    'shared'    => [$good =~ s/"name":"good"/"name":"shared"/r =~ s/\["dedicated"\]/["shared"]/r, qr/shared\.json: shared: shared mode needs/],
    'dupkey'    => ['{"name":"dupkey","name":"dupkey"}', qr/dupkey\.json: line \d+: duplicate object key/],
    'setupdock' => [$good =~ s/"name":"good"/"name":"setupdock"/r =~ s/\["process"\]/["process","docker"]/r
                        =~ s/"command":\["true"\]/"command":["true"],"image":"x"/r
                        =~ s/"services"/"setup":{"service":"web","commands":[["true"]]},"services"/r,
                    qr/setupdock\.json: setup: runs on the process driver only/],
    'setupcmd'  => [$good =~ s/"name":"good"/"name":"setupcmd"/r =~ s/"services"/"setup":{"service":"web","commands":["true"]},"services"/r,
                    qr/setupcmd\.json: setup\.commands\[0\]: must be an array of strings/],
    'setupsvc'  => [$good =~ s/"name":"good"/"name":"setupsvc"/r =~ s/"services"/"setup":{"service":"db","commands":[["true"]]},"services"/r,
                    qr/setupsvc\.json: setup\.service: no such service/],
    'linkout'   => [$good =~ s/"name":"good"/"name":"linkout"/r =~ s/"command":\["true"\]/"command":["true"],"links":{"a\/..\/..\/b":"\/x"}/r,
                    qr/linkout\.json: services\.web\.links\.a\/\.\.\/\.\.\/b: a relative path inside the tenant's directory/],
    'logincmd'  => [$good =~ s/"name":"good"/"name":"logincmd"/r =~ s/"services"/"admin_login":{"command":"true","service":"web"},"services"/r,
                    qr/logincmd\.json: admin_login\.command: must be an array of strings/],
);
Tenant::Test::write_file("$dir/good.json", $good);
Tenant::Test::write_file("$dir/$_.json", $broken{$_}[0]) for keys %broken;

($rc, $out) = Tenant::Test::run_cmd("$Tenant::Test::BUILD/provisioner", 'blueprints', 'check', $dir);
is($rc, 2, 'broken blueprints: exit 2');
like($out, qr/1 blueprint\(s\) valid, ${\ scalar keys %broken} refused/, 'the good one loads, every broken one is refused');
like($out, $broken{$_}[1], "$_: the error names the file and the field") for sort keys %broken;

done_testing();
