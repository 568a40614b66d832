# Structure: calls between the source files of each half go one way. A file
# that calls into another is never called back by it, directly or round a
# longer loop; answers come back through completion pointers, which do not
# show as references. Read from the built objects' symbol tables (nm).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Tenant::Test;

my $top = $Tenant::Test::TOP;
my $build = $Tenant::Test::BUILD;

# object name -> [defined symbols, undefined symbols]
sub symbols {
    my (@objs) = @_;
    my %s;
    for my $o (@objs) {
        my ($name) = $o =~ m{([^/]+)\.o$};
        my (%def, %undef);
        for (`nm $o`) {
            if (/^[0-9a-f]+ [TDBR] (\S+)$/) { $def{$1} = 1 }
            elsif (/^\s+U (\S+)$/) { $undef{$1} = 1 }
        }
        $s{$name} = [\%def, \%undef];
    }
    return \%s;
}

# file -> {file it references -> [symbols]}
sub graph {
    my ($s) = @_;
    my %owner;
    for my $f (keys %$s) { $owner{$_} = $f for keys %{ $s->{$f}[0] } }
    my %g = map { $_ => {} } keys %$s;
    for my $f (keys %$s) {
        for my $sym (keys %{ $s->{$f}[1] }) {
            my $o = $owner{$sym} // next;
            push @{ $g{$f}{$o} }, $sym if $o ne $f;
        }
    }
    return \%g;
}

# the loops: strongly connected components of more than one file
sub loops {
    my ($g) = @_;
    my ($i, %idx, %low, @stack, %on, @out) = (0);
    my $visit;
    $visit = sub {
        my ($v) = @_;
        $idx{$v} = $low{$v} = $i++;
        push @stack, $v;
        $on{$v} = 1;
        for my $w (sort keys %{ $g->{$v} }) {
            if (!defined $idx{$w}) { $visit->($w); $low{$v} = $low{$w} if $low{$w} < $low{$v} }
            elsif ($on{$w}) { $low{$v} = $idx{$w} if $idx{$w} < $low{$v} }
        }
        if ($low{$v} == $idx{$v}) {
            my @c;
            while (1) { my $w = pop @stack; delete $on{$w}; push @c, $w; last if $w eq $v }
            push @out, [sort @c] if @c > 1;
        }
    };
    $visit->($_) for grep { !defined $idx{$_} } sort keys %$g;
    return @out;
}

sub check {
    my ($half, @objs) = @_;
    ok(@objs > 5, "$half: " . scalar(@objs) . ' objects to read') or return;
    my $g = graph(symbols(@objs));
    my $edges = 0;
    $edges += keys %{ $g->{$_} } for keys %$g;
    ok($edges > 10, "$half: $edges references between files");
    my @l = loops($g);
    is(scalar @l, 0, "$half: no file calls back into a file that calls it")
        or diag(join "\n", map {
            my @c = @$_;
            join(' <-> ', @c) . ': ' . join(', ', map {
                my $f = $_;
                map { "$f -> $_ (" . join(' ', @{ $g->{$f}{$_} }[0 .. 1]) . ')' }
                    grep { my $t = $_; grep { $_ eq $t } @c } keys %{ $g->{$f} }
            } @c)
        } @l);
}

my @module = grep {
    my ($n) = m{/([^/]+)\.o$};
    -f "$top/ngx_tenant_module/$n.c" || -f "$top/common/$n.c"
} glob("$build/nginx/objs/addon/*/*.o");
check('module', @module);

my @prov = grep {
    my ($n) = m{/([^/]+)\.o$};
    -f "$top/provisioner/src/$n.c" || ($n =~ /^common_(.+)$/ && -f "$top/common/$1.c")
} glob("$build/provisioner-obj/*.o");
check('provisioner', @prov);

# the test can fail: a loop made on purpose is found
my $g = { a => { b => ['f'] }, b => { c => ['g'] }, c => { a => ['h'] }, d => { a => ['i'] } };
is_deeply([loops($g)], [[qw(a b c)]], 'a three-file loop is found, a one-way edge is not');

done_testing();
