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
    # hookapp: its stack receives the platform's webhooks (busybox httpd CGI):
    # each delivery's signature, body and tries land in its home's hooks/,
    # the key it was given to check them in webhook_secret; a fail-next file
    # makes it answer the next one 503
    make_path("$dir/hookapp");
    Tenant::Test::write_file("$dir/hookapp/index.html", "<h1>{{display_name}} takes sign-ups</h1>\n");
    Tenant::Test::write_file("$dir/hookapp/hook", <<'SH');
#!/bin/sh
d=../../hooks
mkdir -p $d
id=$HTTP_X_NGX_TENANT_DELIVERY
case "$id" in *[!0-9]*|'') printf 'Status: 400 Bad Request\r\n\r\n'; exit 0;; esac
n=$(cat $d/$id.tries 2>/dev/null || echo 0); echo $((n + 1)) > $d/$id.tries
if [ -e ../../fail-next ]; then
    rm -f ../../fail-next
    printf 'Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\nlater\n'
    exit 0
fi
printf %s "$HTTP_X_NGX_TENANT_SIGNATURE" > $d/$id.sig
head -c "$CONTENT_LENGTH" > $d/$id.body
printf 'Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok\n'
SH
    Tenant::Test::write_file("$dir/hookapp.json", $json->encode({
        name => 'hookapp', drivers => ['process'], modes => ['dedicated'],
        themes => ['default'], database => JSON::PP::false,
        roles => { site => 'web' },
        services => { web => {
            command => ['busybox', 'sh', '-c',
                'chmod 755 site/cgi-bin/hook && printf %s "$WEBHOOK_SECRET" > webhook_secret'
                . ' && exec busybox httpd -f -v -p 127.0.0.1:{{port}} -h {{dir}}/site'],
            env => { WEBHOOK_SECRET => '{{secret:webhook_secret}}' },
            health => { path => '/', timeout => 10 },
            files => { 'site/index.html' => 'index.html', 'site/cgi-bin/hook' => 'hook' },
        } },
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
