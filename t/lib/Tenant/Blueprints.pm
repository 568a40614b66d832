package Tenant::Blueprints;

# Test blueprints, written into a test's temp dir beside the shipped ones.

use strict;
use warnings;
use File::Path qw(make_path);
use JSON::PP;
use Tenant::Test;

# dbapp: a per-tenant database and a template secret; its service writes the
# database URL it was given to a file, so the test can use it.
# sharedapp: shared mode only, its endpoint the given backend.
sub make {
    my ($t, %o) = @_;
    my $dir = $t->dir . '/blueprints';
    make_path("$dir/dbapp");
    symlink "$Tenant::Test::TOP/blueprints/static.json", "$dir/static.json";
    symlink "$Tenant::Test::TOP/blueprints/static", "$dir/static";
    symlink "$Tenant::Test::TOP/blueprints/static-shared.json", "$dir/static-shared.json";
    symlink "$Tenant::Test::TOP/blueprints/static-shared", "$dir/static-shared";
    symlink "$Tenant::Test::TOP/blueprints/blog.json", "$dir/blog.json";
    my $json = JSON::PP->new->canonical->pretty;
    Tenant::Test::write_file("$dir/dbapp/index.html", "<h1>{{display_name}} runs on a database</h1>\n");
    Tenant::Test::write_file("$dir/dbapp.json", $json->encode({
        name => 'dbapp', drivers => ['process'], modes => ['dedicated'],
        themes => ['default'], database => JSON::PP::true,
        roles => { site => 'web' },
        services => { web => {
            command => ['busybox', 'sh', '-c',
                'printf %s "$DATABASE_URL" > db_url && exec busybox httpd -f -v -p 127.0.0.1:{{port}} -h {{dir}}/site'],
            # libpq's own variables too: a tool run as the service finds its
            # database with no password on its command line
            env => { DATABASE_URL => '{{db_url}}', APP_KEY => '{{secret:app_key}}',
                     PGHOST => '{{db_host}}', PGPORT => '{{db_port}}', PGUSER => '{{db_user}}',
                     PGPASSWORD => '{{db_password}}', PGDATABASE => '{{db_name}}' },
            health => { path => '/', timeout => 10 },
            files => { 'site/index.html' => 'index.html' },
        } },
        # a fleet migration in two statements, so one that fails in the
        # second leaves the first applied unless the tenant is put back
        migrate => { service => 'web', timeout => 60, commands => [
            ['/usr/bin/psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
             '-c', 'ALTER TABLE items ADD COLUMN tag text'],
            ['/usr/bin/psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1',
             '-c', 'CREATE TABLE audit (at timestamptz)'],
        ] },
    }));
    if ($o{shared}) {
        Tenant::Test::write_file("$dir/sharedapp.json", $json->encode({
            name => 'sharedapp', drivers => ['process'], modes => ['shared'],
            themes => ['default'], database => JSON::PP::true,
            shared => { site => $o{shared} },
        }));
    }
    return $dir;
}

1;
