package sshexec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// fallbackParser resolves ssh_config without an ssh client, for machines
// that have none. It reads one file (Host blocks, first value wins, as
// OpenSSH) and refuses, with a clear error, the constructs only OpenSSH
// itself evaluates faithfully: Match blocks.
type fallbackParser struct {
	path        string // "" when no file is read
	cfg         *ssh_config.Config
	refuse      error // set when the file uses something the parser cannot do
	home        string
	defaultUser string
}

// defaultIdentities are OpenSSH 9's default identity files, in its order.
var defaultIdentities = []string{"id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk", "id_xmss", "id_dsa"}

func newFallbackParser(path string, explicit bool, home, defaultUser string) (*fallbackParser, error) {
	fp := &fallbackParser{home: home, defaultUser: defaultUser}
	if path == "" {
		return fp, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return fp, nil
		}
		return nil, fmt.Errorf("read ssh_config: %w", err)
	}
	fp.path = path
	if kw := unsupportedKeyword(data); strings.HasPrefix(kw, "\x00") {
		fp.refuse = fmt.Errorf("%w: ssh_config %s: bad configuration option %q (ssh refuses it too)", ErrConfig, path, kw[1:])
		return fp, nil
	} else if kw != "" {
		fp.refuse = fmt.Errorf("%w: ssh_config %s uses %s, which only OpenSSH's own `ssh -G` resolves faithfully; "+
			"install the OpenSSH client (openssh-client) or set ssh.ssh_config: none", ErrConfig, path, kw)
		return fp, nil
	}
	c, err := ssh_config.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("%w: parse ssh_config %s: %w", ErrConfig, path, err)
	}
	fp.cfg = c
	return fp, nil
}

// sshKeywords are the keywords OpenSSH 9's ssh accepts (deprecated ones
// included, which it only warns about); ssh refuses any other.
var sshKeywords = map[string]bool{
	"addkeystoagent":                   true,
	"addressfamily":                    true,
	"batchmode":                        true,
	"bindaddress":                      true,
	"bindinterface":                    true,
	"canonicaldomains":                 true,
	"canonicalizefallbacklocal":        true,
	"canonicalizehostname":             true,
	"canonicalizemaxdots":              true,
	"canonicalizepermittedcnames":      true,
	"casignaturealgorithms":            true,
	"certificatefile":                  true,
	"challengeresponseauthentication":  true,
	"checkhostip":                      true,
	"cipher":                           true,
	"ciphers":                          true,
	"clearallforwardings":              true,
	"compression":                      true,
	"compressionlevel":                 true,
	"connectionattempts":               true,
	"connecttimeout":                   true,
	"controlmaster":                    true,
	"controlpath":                      true,
	"controlpersist":                   true,
	"dsaauthentication":                true,
	"dynamicforward":                   true,
	"enableescapecommandline":          true,
	"enablesshkeysign":                 true,
	"escapechar":                       true,
	"exitonforwardfailure":             true,
	"fallbacktorsh":                    true,
	"fingerprinthash":                  true,
	"forkafterauthentication":          true,
	"forwardagent":                     true,
	"forwardx11":                       true,
	"forwardx11timeout":                true,
	"forwardx11trusted":                true,
	"gatewayports":                     true,
	"globalknownhostsfile":             true,
	"globalknownhostsfile2":            true,
	"gssapiauthentication":             true,
	"gssapiclientidentity":             true,
	"gssapidelegatecredentials":        true,
	"gssapikexalgorithms":              true,
	"gssapikeyexchange":                true,
	"gssapirenewalforcesrekey":         true,
	"gssapiserveridentity":             true,
	"gssapitrustdns":                   true,
	"hashknownhosts":                   true,
	"host":                             true,
	"hostbasedacceptedalgorithms":      true,
	"hostbasedauthentication":          true,
	"hostbasedkeytypes":                true,
	"hostkeyalgorithms":                true,
	"hostkeyalias":                     true,
	"hostname":                         true,
	"identitiesonly":                   true,
	"identityagent":                    true,
	"identityfile":                     true,
	"ignoreunknown":                    true,
	"include":                          true,
	"ipqos":                            true,
	"kbdinteractiveauthentication":     true,
	"kbdinteractivedevices":            true,
	"keepalive":                        true,
	"kexalgorithms":                    true,
	"knownhostscommand":                true,
	"localcommand":                     true,
	"localforward":                     true,
	"loglevel":                         true,
	"logverbose":                       true,
	"macs":                             true,
	"match":                            true,
	"nohostauthenticationforlocalhost": true,
	"numberofpasswordprompts":          true,
	"passwordauthentication":           true,
	"permitlocalcommand":               true,
	"permitremoteopen":                 true,
	"pkcs11provider":                   true,
	"port":                             true,
	"protocol":                         true,
	"proxycommand":                     true,
	"proxyjump":                        true,
	"proxyusefdpass":                   true,
	"pubkeyacceptedalgorithms":         true,
	"pubkeyacceptedkeytypes":           true,
	"pubkeyauthentication":             true,
	"rekeylimit":                       true,
	"remotecommand":                    true,
	"remoteforward":                    true,
	"requesttty":                       true,
	"requiredrsasize":                  true,
	"revokedhostkeys":                  true,
	"rhostsauthentication":             true,
	"rhostsrsaauthentication":          true,
	"rsaauthentication":                true,
	"securitykeyprovider":              true,
	"sendenv":                          true,
	"serveralivecountmax":              true,
	"serveraliveinterval":              true,
	"sessiontype":                      true,
	"setenv":                           true,
	"smartcarddevice":                  true,
	"stdinnull":                        true,
	"streamlocalbindmask":              true,
	"streamlocalbindunlink":            true,
	"stricthostkeychecking":            true,
	"syslogfacility":                   true,
	"tcpkeepalive":                     true,
	"tunnel":                           true,
	"tunneldevice":                     true,
	"updatehostkeys":                   true,
	"uselogin":                         true,
	"useprivilegedport":                true,
	"user":                             true,
	"userknownhostsfile":               true,
	"userknownhostsfile2":              true,
	"useroaming":                       true,
	"usersh":                           true,
	"verifyhostkeydns":                 true,
	"visualhostkey":                    true,
	"xauthlocation":                    true,
}

// unsupportedKeyword returns the first keyword of data the parser cannot
// evaluate as OpenSSH does, or "".
func unsupportedKeyword(data []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		kw := strings.ToLower(strings.SplitN(f[0], "=", 2)[0])
		switch kw {
		case "match", "include", "canonicalizehostname", "ignoreunknown":
			return f[0]
		}
		if !sshKeywords[kw] {
			return "\x00" + f[0]
		}
	}
	return ""
}

func (fp *fallbackParser) get(alias, key string) (string, error) {
	if fp.cfg == nil {
		return "", nil
	}
	v, err := fp.cfg.Get(alias, key)
	if err != nil {
		return "", fmt.Errorf("%w: ssh_config %s for %s: %w", ErrConfig, key, alias, err)
	}
	return v, nil
}

func (fp *fallbackParser) getAll(alias, key string) ([]string, error) {
	if fp.cfg == nil {
		return nil, nil
	}
	v, err := fp.cfg.GetAll(alias, key)
	if err != nil {
		return nil, fmt.Errorf("%w: ssh_config %s for %s: %w", ErrConfig, key, alias, err)
	}
	return v, nil
}

// resolve answers q as ssh -G would for the keywords the parser knows.
func (fp *fallbackParser) resolve(q query) (options, error) {
	if fp.refuse != nil {
		return options{}, fp.refuse
	}
	o := options{host: q.dest, strictHostKeys: "ask"}
	str := func(key string) string {
		v, _ := fp.get(q.dest, key)
		return v
	}
	if _, err := fp.get(q.dest, "HostName"); err != nil {
		return options{}, err
	}
	o.hostname = q.hostname
	if o.hostname == "" {
		o.hostname = q.dest
		if hn := str("HostName"); hn != "" {
			o.hostname = strings.NewReplacer("%h", q.dest, "%%", "%").Replace(hn)
		}
	}
	o.hostname = strings.ToLower(o.hostname) // as ssh
	o.user = q.user
	if o.user == "" {
		o.user = str("User")
	}
	if o.user == "" {
		o.user = fp.defaultUser
	}
	o.port = q.port
	if o.port == 0 {
		if p := str("Port"); p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return options{}, fmt.Errorf("%w: ssh_config port %q for %s: invalid", ErrConfig, p, q.dest)
			}
			o.port = n
		}
	}
	if o.port == 0 {
		o.port = 22
	}
	o.identityFiles = append(o.identityFiles, q.identities...)
	ids, err := fp.getAll(q.dest, "IdentityFile")
	if err != nil {
		return options{}, err
	}
	o.identityFiles = append(o.identityFiles, ids...)
	if len(o.identityFiles) == 0 {
		for _, n := range defaultIdentities {
			o.identityFiles = append(o.identityFiles, "~/.ssh/"+n)
		}
	}
	if o.certificateFiles, err = fp.getAll(q.dest, "CertificateFile"); err != nil {
		return options{}, err
	}
	o.identitiesOnly = yes(str("IdentitiesOnly"))
	o.identityAgent = str("IdentityAgent")
	o.proxyJump = q.jump
	if o.proxyJump == "" {
		o.proxyJump = str("ProxyJump")
	}
	if o.proxyJump == "none" {
		o.proxyJump = ""
	}
	if o.proxyJump == "" {
		if pc := str("ProxyCommand"); pc != "none" {
			o.proxyCommand = pc
		}
	}
	o.userKnownHosts = strings.Fields(str("UserKnownHostsFile"))
	if len(o.userKnownHosts) == 0 {
		o.userKnownHosts = []string{"~/.ssh/known_hosts", "~/.ssh/known_hosts2"}
	}
	o.globalKnownHosts = strings.Fields(str("GlobalKnownHostsFile"))
	if len(o.globalKnownHosts) == 0 {
		o.globalKnownHosts = []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	}
	o.hostKeyAlias = str("HostKeyAlias")
	if v := str("StrictHostKeyChecking"); v != "" {
		o.strictHostKeys = normStrict(v)
	}
	o.hashKnownHosts = yes(str("HashKnownHosts"))
	if v := str("ConnectTimeout"); v != "" && v != "none" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return options{}, fmt.Errorf("%w: ssh_config ConnectTimeout %q for %s: invalid", ErrConfig, v, q.dest)
		}
		o.connectTimeout = time.Duration(n) * time.Second
	}
	if v := str("PubkeyAuthentication"); v != "" {
		o.pubkeyAuthOff = !yes(v)
	}
	switch {
	case yes(str("ProxyUseFdpass")):
		o.unsupported = "ProxyUseFdpass yes"
	case str("KnownHostsCommand") != "" && str("KnownHostsCommand") != "none":
		o.unsupported = "KnownHostsCommand (list the keys in a known_hosts file instead)"
	case str("RevokedHostKeys") != "" && str("RevokedHostKeys") != "none":
		o.unsupported = "RevokedHostKeys (mark the keys @revoked in a known_hosts file instead)"
	}
	for i, f := range o.userKnownHosts {
		o.userKnownHosts[i] = expandTilde(f, fp.home)
	}
	return o, nil
}

// expandTilde replaces a leading "~" with home.
func expandTilde(p, home string) string {
	if home == "" {
		return p
	}
	if p == "~" {
		return home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, rest)
	}
	return p
}
