package sshexec_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Known hosts of the target, the second target and the bastion.
const khAll = "[127.0.0.1]:{T1} {t_ed}\n[127.0.0.1]:{T2} {t2_ed}\n[127.0.0.1]:{B} {b_ed}\n"

// a1 is the target under an alias, with k1.
const a1 = "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/k1\n"

// a1bare is the alias without a port.
const a1bare = "Host a1\n  HostName 127.0.0.1\n  IdentityFile {K}/k1\n"

// bast is the bastion under an alias, with its own HostName, Port and User.
const bast = "Host bast\n  HostName 127.0.0.1\n  Port {B}\n  User {U}\n  IdentityFile {K}/k1\n"

const (
	ok1     = "ok {U}@127.0.0.1:{T1}"
	ok2     = "ok {U}@127.0.0.1:{T2}"
	okC     = "ok {U}@127.0.0.1:{C}"
	rHKu    = "refused: host_key (unknown)"
	rHKc    = "refused: host_key (changed)"
	rHKr    = "refused: host_key (revoked)"
	rHKcert = "refused: host_key (certificate)"
	rAu     = "refused: auth"
	rUn     = "refused: unreachable"
	rCfg    = "refused: config"
	c1      = "Host c1\n  HostName 127.0.0.1\n  Port {C}\n  IdentityFile {K}/k1\n"
)

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(data))
}

func knownHasEntry(name string) func(t *testing.T, f *fixture, dir string) string {
	return func(t *testing.T, f *fixture, dir string) string {
		out, _ := exec.Command("ssh-keygen", "-F", f.expand(name, dir), "-f", filepath.Join(dir, "known_hosts")).Output()
		data, _ := os.ReadFile(filepath.Join(dir, "known_hosts"))
		hashed := strings.Contains(string(data), "|1|")
		switch {
		case len(out) == 0:
			return ", known_hosts: no entry"
		case hashed:
			return ", known_hosts: hashed entry"
		}
		return ", known_hosts: plain entry"
	}
}

func fidelityCases() []fcase {
	return []fcase{
		// Resolution and precedence.
		{name: "HostName, Port and User from a Host block", config: a1 + "  User {U}\n", known: khAll, dest: "a1", want: ok1},
		{name: "ssh_config User is applied", config: a1 + "  User nosuchuser\n", known: khAll, dest: "a1", want: rAu},
		{name: "explicit user (-l) beats ssh_config User", config: a1 + "  User nosuchuser\n", known: khAll, dest: "a1", user: "{U}", want: ok1},
		{name: "ssh_config Port is applied", config: a1bare + "  Port {T2}\n", known: khAll, dest: "a1", want: ok2},
		{name: "explicit port (-p) beats ssh_config Port", config: a1bare + "  Port {T2}\n", known: khAll, dest: "a1", port: "{T1}", want: ok1},
		{name: "explicit address beats ssh_config HostName", config: "Host a1\n  HostName 192.0.2.1\n  Port {T1}\n  IdentityFile {K}/k1\n", known: khAll, dest: "a1", address: "127.0.0.1", want: ok1},
		{name: "first obtained value wins", config: a1 + "Host *\n  Port {T2}\n", known: khAll, dest: "a1", want: ok1},
		{name: "negated Host pattern", config: "Host * !a1\n  Port {T2}\n" + a1, known: khAll, dest: "a1", want: ok1},
		{name: "wildcard Host pattern", config: "Host a?\n  HostName 127.0.0.1\n  Port {T2}\n  IdentityFile {K}/k1\n", known: khAll, dest: "a1", want: ok2},
		{name: "Host patterns are case-sensitive", config: a1 + "Host A1\n  Port {T2}\n", known: khAll, dest: "A1", want: "refused: unreachable"},
		{name: "Match host (after HostName)", config: a1bare + "Match host 127.0.0.1\n  Port {T2}\n", known: khAll, dest: "a1", want: ok2},
		{name: "Match originalhost", config: a1 + "Match originalhost a1\n  User nosuchuser\n", known: khAll, dest: "a1", want: rAu},
		{name: "Match user", config: a1bare + "Match user {U}\n  Port {T2}\n", known: khAll, dest: "a1", want: ok2},
		{name: "Match host X user Y needs both", config: a1bare + "Match host 127.0.0.1 user nosuchuser\n  Port {T2}\nHost *\n  Port {T1}\n", known: khAll, dest: "a1", want: ok1},
		{name: "Match localuser", config: a1bare + "Match localuser {U}\n  Port {T2}\n", known: khAll, dest: "a1", want: ok2},
		{name: "Match exec that succeeds (%n token)", config: a1bare + "Match exec \"test %n = a1\"\n  Port {T2}\n", known: khAll, dest: "a1", want: ok2},
		{name: "Match exec that fails", config: a1bare + "Match exec false\n  Port {T2}\nHost *\n  Port {T1}\n", known: khAll, dest: "a1", want: ok1},
		{name: "Match all", config: a1 + "Match all\n  User nosuchuser\n", known: khAll, dest: "a1", want: rAu},
		{name: "Match canonical without CanonicalizeHostname", config: a1bare + "Match canonical\n  Port {T2}\nHost *\n  Port {T1}\n", known: khAll, dest: "a1", want: ok1},
		{name: "Match final without CanonicalizeHostname", config: a1bare + "Match final\n  Port {T2}\nHost *\n  Port {T1}\n", known: khAll, dest: "a1", want: ok1},
		{name: "Match canonical with CanonicalizeHostname yes", config: "CanonicalizeHostname yes\nCanonicalDomains localdomain\nCanonicalizeFallbackLocal yes\n" + a1bare + "Match canonical\n  Port {T2}\nHost *\n  Port {T1}\n", known: khAll, dest: "a1", want: ok1},
		{name: "Include a file", config: "Include {D}/inc.conf\n", known: khAll, dest: "a1", want: ok2,
			prepare: func(t *testing.T, f *fixture, dir string) {
				writeFile(t, filepath.Join(dir, "inc.conf"), f.expand(a1bare+"  Port {T2}\n", dir))
			}},
		{name: "Include a glob, files in order", config: "Include {D}/conf.d/*.conf\n", known: khAll, dest: "a1", want: ok2,
			prepare: func(t *testing.T, f *fixture, dir string) {
				writeFile(t, filepath.Join(dir, "conf.d", "10-a.conf"), f.expand(a1bare+"  Port {T2}\n", dir))
				writeFile(t, filepath.Join(dir, "conf.d", "20-b.conf"), f.expand("Host a1\n  Port {T1}\n", dir))
			}},
		{name: "misspelt keyword", config: a1 + "  Prot 2222\n", known: khAll, dest: "a1", want: rCfg},
		{name: "ConnectTimeout 1 bounds a server that never speaks", config: "Host a1\n  HostName 127.0.0.1\n  Port {S}\n  ConnectTimeout 1\n  IdentityFile {K}/k1\n", known: khAll, dest: "a1", timed: true, want: rUn + " (within 6s)"},
		{name: "closed port", config: "Host a1\n  HostName 127.0.0.1\n  Port {X}\n  IdentityFile {K}/k1\n", known: khAll, dest: "a1", want: rUn},

		// ProxyCommand and ProxyJump.
		{name: "ProxyCommand through the bastion (ssh -W)", config: a1 + "  ProxyCommand ssh -F {D}/bastion.conf -W %h:%p bastion\n", known: khAll, dest: "a1", want: ok1 + ", via bastion ×1"},
		{name: "ProxyCommand tokens %r %n %h %p", config: a1 + "  ProxyCommand sh -c 'test %r = {U} && test %n = a1 && exec ssh -F {D}/bastion.conf -W %h:%p bastion'\n", known: khAll, dest: "a1", want: ok1 + ", via bastion ×1"},
		{name: "ProxyCommand runs as exec COMMAND (a compound command fails)", config: a1 + "  ProxyCommand sleep 0.3 && exec ssh -F {D}/bastion.conf -W %h:%p bastion\n", known: khAll, dest: "a1", want: rUn},
		{name: "ProxyCommand that fails", config: a1 + "  ProxyCommand sh -c 'sleep 0.3; exit 1'\n", known: khAll, dest: "a1", want: rUn},
		{name: "ProxyCommand none beats a later one", config: a1 + "  ProxyCommand none\nHost *\n  ProxyCommand sh -c 'sleep 0.3; exit 1'\n", known: khAll, dest: "a1", want: ok1},
		{name: "ProxyJump user@host:port from ssh_config", config: a1 + "  ProxyJump {U}@127.0.0.1:{B}\nHost 127.0.0.1\n  IdentityFile {K}/k1\n", known: khAll, dest: "a1", want: ok1 + ", via bastion ×1"},
		{name: "ProxyJump alias: the bastion's own HostName, Port, User", config: bast + a1 + "  ProxyJump bast\n", known: khAll, dest: "a1", want: ok1 + ", via bastion ×1"},
		{name: "explicit jump (-J) without a port: the bastion's own Port", config: bast + a1bare, known: khAll, dest: "a1", jump: "bast", port: "{T1}", want: ok1 + ", via bastion ×1"},
		{name: "the first bastion's own ProxyJump is followed", config: "Host bast2\n  HostName 127.0.0.1\n  Port {B}\n  IdentityFile {K}/k1\n  ProxyJump bast\n" + bast + a1 + "  ProxyJump bast2\n", known: khAll, dest: "a1", want: ok1 + ", via bastion ×2"},
		{name: "a bastion reached through its own ProxyCommand", config: "Host bastp\n  HostName 127.0.0.1\n  Port {B}\n  User {U}\n  IdentityFile {K}/k1\n  ProxyCommand ssh -F {D}/bastion.conf -W %h:%p bastion\n" + a1 + "  ProxyJump bastp\n", known: khAll, dest: "a1", want: ok1 + ", via bastion ×2"},
		{name: "explicit jump chain bast,bast", config: bast + a1, known: khAll, dest: "a1", jump: "bast,bast", want: ok1 + ", via bastion ×2"},
		{name: "ProxyJump none beats a later one", config: a1 + "  ProxyJump none\nHost *\n  ProxyJump bast\n" + bast, known: khAll, dest: "a1", want: ok1},

		// Host keys.
		{name: "[host]:port entry", config: a1, known: "[127.0.0.1]:{T1} {t_ed}\n", dest: "a1", want: ok1},
		{name: "unknown host", config: a1, known: "", dest: "a1", want: rHKu},
		{name: "changed key", config: a1, known: "[127.0.0.1]:{T1} {other}\n", dest: "a1", want: rHKc},
		{name: "hashed entry (ssh-keygen -H)", config: a1, known: "[127.0.0.1]:{T1} {t_ed}\n", dest: "a1", want: ok1,
			prepare: func(t *testing.T, f *fixture, dir string) {
				run(t, nil, "ssh-keygen", "-q", "-H", "-f", filepath.Join(dir, "known_hosts"))
			}},
		{name: "port-less entry at a non-22 port", config: a1, known: "127.0.0.1 {t_ed}\n", dest: "a1", want: ok1},
		{name: "port-less entry with another key at a non-22 port", config: a1, known: "127.0.0.1 {other}\n", dest: "a1", want: rHKu},
		{name: "bare * entry", config: a1, known: "* {t_ed}\n", dest: "a1", want: ok1},
		{name: "[host]:* entry", config: a1, known: "[127.0.0.1]:* {t_ed}\n", dest: "a1", want: ok1},
		{name: "negated pattern excludes the host", config: a1, known: "!127.0.0.1,127.0.0.* {t_ed}\n", dest: "a1", want: rHKu},
		{name: "entry for another port only", config: a1, known: "[127.0.0.1]:{T2} {t_ed}\n", dest: "a1", want: rHKu},
		{name: "GlobalKnownHostsFile", config: a1, known: "", global: "[127.0.0.1]:{T1} {t_ed}\n", dest: "a1", want: ok1},
		{name: "two UserKnownHostsFile files, key in the second", config: a1 + "  UserKnownHostsFile {D}/kh1 {D}/kh2\n", known: "", dest: "a1", want: ok1,
			prepare: func(t *testing.T, f *fixture, dir string) {
				writeFile(t, filepath.Join(dir, "kh2"), f.expand("[127.0.0.1]:{T1} {t_ed}\n", dir))
			}},
		{name: "HostKeyAlias", config: a1 + "  HostKeyAlias qm-alias\n", known: "qm-alias {t_ed}\n", dest: "a1", want: ok1},
		{name: "HostKeyAlias ignores the address's entry", config: a1 + "  HostKeyAlias qm-alias\n", known: "[127.0.0.1]:{T1} {t_ed}\n", dest: "a1", want: rHKu},
		{name: "only a key type the server does not offer is known", config: a1, known: "[127.0.0.1]:{T1} {rsa}\n", dest: "a1", want: rHKc},
		{name: "ECDSA key known, server prefers ed25519", config: a1, known: "[127.0.0.1]:{T1} {t_ec}\n", dest: "a1", want: ok1},
		{name: "@cert-authority * (CA-signed host certificate)", config: c1, known: "@cert-authority * {ca}\n", dest: "c1", want: okC},
		{name: "@cert-authority [host]:port", config: c1, known: "@cert-authority [127.0.0.1]:{C} {ca}\n", dest: "c1", want: okC},
		{name: "@cert-authority of another CA, plain key listed", config: c1, known: "@cert-authority * {ca2}\n[127.0.0.1]:{C} {c_ed}\n", dest: "c1", want: okC},
		{name: "@cert-authority of another CA only", config: c1, known: "@cert-authority * {ca2}\n", dest: "c1", want: rHKu},
		{name: "@revoked host key beside its CA", config: c1, known: "@cert-authority * {ca}\n@revoked * {c_ed}\n", dest: "c1", want: rHKr},
		{name: "@revoked plain key", config: a1, known: "[127.0.0.1]:{T1} {t_ed}\n@revoked * {t_ed}\n", dest: "a1", want: rHKr},
		{name: "host certificate principal does not match the HostKeyAlias", config: c1 + "  HostKeyAlias wrongname\n", known: "@cert-authority * {ca}\n", dest: "c1", want: rHKcert},
		{name: "host certificate principal matches the HostKeyAlias", config: c1 + "  HostKeyAlias certhost\n", known: "@cert-authority certhost {ca}\n", dest: "c1", want: okC},

		// TOFU and StrictHostKeyChecking.
		{name: "tofu (accept-new) on an unknown host", config: a1, known: "", dest: "a1", tofu: true, want: ok1 + ", known_hosts: plain entry",
			note: knownHasEntry("[127.0.0.1]:{T1}")},
		{name: "tofu with HashKnownHosts yes", config: a1 + "  HashKnownHosts yes\n", known: "", dest: "a1", tofu: true, want: ok1 + ", known_hosts: hashed entry",
			note: knownHasEntry("[127.0.0.1]:{T1}")},
		{name: "tofu with HostKeyAlias records the alias", config: a1 + "  HostKeyAlias qm-alias\n", known: "", dest: "a1", tofu: true, want: ok1 + ", known_hosts: plain entry",
			note: knownHasEntry("qm-alias")},
		{name: "tofu on a host with a certificate and no CA line", config: c1, known: "", dest: "c1", tofu: true, want: okC + ", known_hosts: plain entry",
			note: knownHasEntry("[127.0.0.1]:{C}")},
		{name: "tofu never accepts a changed key", config: a1, known: "[127.0.0.1]:{T1} {other}\n", dest: "a1", tofu: true, want: rHKc},
		{name: "StrictHostKeyChecking yes beats tofu", config: a1 + "  StrictHostKeyChecking yes\n", known: "", dest: "a1", tofu: true, sshArgs: []string{}, want: rHKu},
		{name: "ssh_config accept-new without tofu (ssh -o StrictHostKeyChecking=yes)", config: a1 + "  StrictHostKeyChecking accept-new\n", known: "", dest: "a1",
			sshArgs: []string{"-o", "StrictHostKeyChecking=yes"}, want: rHKu},
		{name: "ssh_config accept-new with tofu", config: a1 + "  StrictHostKeyChecking accept-new\n", known: "", dest: "a1", tofu: true, sshArgs: []string{}, want: ok1},

		// Authentication.
		{name: "IdentitiesOnly yes with a crowded agent", config: a1, known: khAll, dest: "a1", agent: "junk", want: ok1},
		{name: "IdentitiesOnly no with a crowded agent: too many failures", config: a1 + "  IdentitiesOnly no\n", known: khAll, dest: "a1", agent: "junk", want: rAu},
		{name: "PubkeyAuthentication no", config: a1 + "  PubkeyAuthentication no\n", known: khAll, dest: "a1", want: rAu},
		{name: "wrong key", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/k2\n", known: khAll, dest: "a1", want: rAu},
		{name: "IdentityFile missing", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/nonexistent\n", known: khAll, dest: "a1", want: rAu},
		{name: "IdentityFile with %u %r %h tokens", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/%u-%r-at-%h\n", known: khAll, dest: "a1", want: ok1},
		{name: "IdentityFile with the %d token (home)", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile %d/../{K}/k1\n", known: khAll, dest: "a1", want: ok1},
		{name: "explicit identity file (-i) is offered first", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/k2\n", known: khAll, dest: "a1", identity: "{K}/k1", want: ok1},
		{name: "IdentityFile with %n %p %% tokens", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {D}/id-%n-%p-%%\n", known: khAll, dest: "a1", want: ok1,
			prepare: func(t *testing.T, f *fixture, dir string) {
				copyFile(t, filepath.Join(f.dir, "keys", "k1"), filepath.Join(dir, f.expand("id-a1-{T1}-%", dir)))
			}},
		{name: "CertificateFile (user certificate, TrustedUserCAKeys)", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/k3\n  CertificateFile {K}/k3.crt\n", known: khAll, dest: "a1", want: ok1},
		{name: "key-cert.pub beside the key", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {D}/k3\n", known: khAll, dest: "a1", want: ok1,
			prepare: func(t *testing.T, f *fixture, dir string) {
				copyFile(t, filepath.Join(f.dir, "keys", "k3"), filepath.Join(dir, "k3"))
				copyFile(t, filepath.Join(f.dir, "keys", "k3.crt"), filepath.Join(dir, "k3-cert.pub"))
			}},
		{name: "user key without its certificate", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/k3\n", known: khAll, dest: "a1", want: rAu},
		{name: "agent certificate", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/nonexistent\n  IdentitiesOnly no\n", known: khAll, dest: "a1", agent: "k3", want: ok1},
		{name: "IdentityAgent from ssh_config", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/nonexistent\n  IdentitiesOnly no\n  IdentityAgent {F}/a2.sock\n", known: khAll, dest: "a1", want: ok1},
		{name: "IdentityAgent none", config: "Host a1\n  HostName 127.0.0.1\n  Port {T1}\n  IdentityFile {K}/nonexistent\n  IdentitiesOnly no\n  IdentityAgent none\n", known: khAll, dest: "a1", agent: "k1", want: rAu},
	}
}
