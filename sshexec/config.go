package sshexec

import (
	"cmp"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config holds the settings shared by every connection of a Pool.
//
// Where a connection goes (address, user, port, identities, certificates,
// proxy, jump chain, known_hosts files, host key alias, timeouts) is
// OpenSSH's own answer: the Pool asks `ssh -G` once per host (cached for
// the Pool's life), with the values set explicitly in Host and Config
// passed as ssh's command-line options, so they win over ssh_config as
// they would on ssh's command line. A zero field is not explicit: ssh_config
// decides, then OpenSSH's defaults. Without an ssh client a built-in
// parser stands in; it refuses what it cannot resolve faithfully (Match,
// Include).
type Config struct {
	// User is the login user for every Host that sets none (as ssh -l).
	// Default: ssh_config User, then the current user.
	User string
	// Port is the SSH port for every Host that sets none (as ssh -p).
	// Default: ssh_config Port, then 22.
	Port int
	// IdentityFiles are private key files to offer before ssh_config's
	// (as ssh -i); "~" is expanded. A missing file listed here is an
	// error. ssh_config's IdentityFile entries (with %-tokens), or
	// OpenSSH's default files, follow; missing ones are skipped.
	IdentityFiles []string
	// KnownHostsFiles replace ssh_config's UserKnownHostsFile; "~" is
	// expanded. Default: ssh_config UserKnownHostsFile (OpenSSH default
	// ~/.ssh/known_hosts ~/.ssh/known_hosts2). GlobalKnownHostsFile
	// (default /etc/ssh/ssh_known_hosts and ssh_known_hosts2) is read
	// too. Host keys are always checked: @cert-authority, @revoked,
	// hashed entries, patterns and HostKeyAlias as OpenSSH does.
	KnownHostsFiles []string
	// TOFU (trust on first use) accepts the key of a host that no
	// known_hosts file knows and appends it to the first user known_hosts
	// file (hashed when ssh_config says HashKnownHosts yes). A key that
	// differs from a known one is always refused. StrictHostKeyChecking
	// yes in ssh_config turns TOFU off for that host; ssh_config's
	// accept-new or no take effect only with TOFU, and never accept a
	// changed key.
	TOFU bool
	// Jump is a jump host chain for every Host (as ssh -J),
	// "[user@]host[:port]", several separated by commas, outermost
	// first. Default: ssh_config ProxyJump or ProxyCommand. As OpenSSH,
	// the last hop is reached through the others, and each hop's user,
	// port, address and keys come from its own ssh_config (the first
	// hop's own ProxyJump too); a hop without a port uses its
	// ssh_config Port, then 22, never Config.Port.
	Jump string
	// ConnectTimeout bounds the TCP connect (or proxy start) plus the SSH
	// handshake of one connection. Default: ssh_config ConnectTimeout,
	// then 10s.
	ConnectTimeout time.Duration
	// SSHConfigFile is the ssh_config file to honour (ssh -F). "" means
	// OpenSSH's defaults, ~/.ssh/config and /etc/ssh/ssh_config; "none"
	// disables ssh_config.
	SSHConfigFile string
	// SSHClient is the ssh binary asked with -G. "" means "ssh" on PATH,
	// and the built-in parser when there is none; "none" forces the
	// built-in parser.
	SSHClient string
	// AgentSocket is the ssh-agent socket. Default: ssh_config
	// IdentityAgent, then $SSH_AUTH_SOCK; if that is empty too, or the
	// value is "none", no agent is used.
	AgentSocket string
	// MaxHandshakes bounds how many connections (TCP connect plus SSH
	// handshake) the Pool sets up at once. It does not bound how many
	// sessions run on established connections. Default 32.
	MaxHandshakes int
	// MaxSessions bounds how many commands Run at once on one connection;
	// more wait for a free session. OpenSSH refuses more than MaxSessions
	// (10 by default) sessions per connection, one of which the SFTP
	// session may hold. Default 8.
	MaxSessions int
	// Keepalive is the interval of keepalive@openssh.com requests on each
	// connection; a connection that does not answer within three
	// intervals is closed. 0 disables keepalives.
	Keepalive time.Duration
	// Home is the directory "~" and %d stand for in identity and
	// certificate files. Default: the user's home from the password
	// database, as OpenSSH (not $HOME). Hermetic tests set it.
	Home string
}

// Host is one target of a Pool.
type Host struct {
	// Name is the logical name (the inventory key). The Pool keeps one
	// connection per Name.
	Name string
	// Alias is the destination ssh_config is matched against, as in
	// `ssh ALIAS`. Default: Name.
	Alias string
	// Address is the address to dial. Default: ssh_config HostName, then
	// the alias. An explicit Address is never rewritten (it is passed as
	// ssh -o HostName=ADDRESS ALIAS).
	Address string
	// Port is the SSH port; 0 means Config.Port, ssh_config or 22.
	Port int
	// User is the login user; "" means Config.User, ssh_config or the
	// current user.
	User string
	// IdentityFile is an extra private key file for this host, offered
	// before all others. A missing file is an error.
	IdentityFile string
}

const defaultConnectTimeout = 10 * time.Second
const defaultMaxHandshakes = 32
const defaultMaxSessions = 8

// maxHops bounds a jump chain, following each hop's own ProxyJump.
const maxHops = 8

// settings is a Config with the defaults that do not depend on the host
// filled in.
type settings struct {
	Config
	home        string // the user's home as OpenSSH sees it (passwd)
	envAgent    string // $SSH_AUTH_SOCK
	defaultUser string
	uid         string
	localHost   string
	resolver    *resolver
}

func newSettings(cfg Config) (*settings, error) {
	s := &settings{Config: cfg}
	switch {
	case cfg.Port < 0 || cfg.Port > 65535:
		return nil, fmt.Errorf("sshexec config: port %d out of range", cfg.Port)
	case cfg.ConnectTimeout < 0:
		return nil, fmt.Errorf("sshexec config: negative connect timeout %s", cfg.ConnectTimeout)
	case cfg.MaxHandshakes < 0:
		return nil, fmt.Errorf("sshexec config: negative max handshakes %d", cfg.MaxHandshakes)
	case cfg.MaxSessions < 0:
		return nil, fmt.Errorf("sshexec config: negative max sessions %d", cfg.MaxSessions)
	case cfg.Keepalive < 0:
		return nil, fmt.Errorf("sshexec config: negative keepalive %s", cfg.Keepalive)
	}
	if s.MaxHandshakes == 0 {
		s.MaxHandshakes = defaultMaxHandshakes
	}
	if s.MaxSessions == 0 {
		s.MaxSessions = defaultMaxSessions
	}
	if u, err := user.Current(); err == nil {
		s.defaultUser, s.home, s.uid = u.Username, u.HomeDir, u.Uid
	} else {
		s.defaultUser = os.Getenv("USER")
		s.home, _ = os.UserHomeDir()
		s.uid = strconv.Itoa(os.Getuid())
	}
	if s.Config.Home != "" {
		s.home = s.Config.Home
	}
	s.localHost, _ = os.Hostname()
	s.envAgent = os.Getenv("SSH_AUTH_SOCK")
	s.KnownHostsFiles = s.expandAll(s.KnownHostsFiles)
	s.IdentityFiles = s.expandAll(s.IdentityFiles)

	configFile, explicit := s.SSHConfigFile, true
	switch configFile {
	case "none":
	case "":
		explicit = false
	default:
		configFile = s.expand(configFile)
		if _, err := os.Stat(configFile); err != nil {
			return nil, fmt.Errorf("read ssh_config: %w", err)
		}
	}
	sshPath := ""
	switch s.SSHClient {
	case "none":
	case "":
		if p, err := exec.LookPath("ssh"); err == nil {
			sshPath = p
		}
	default:
		p, err := exec.LookPath(s.SSHClient)
		if err != nil {
			return nil, fmt.Errorf("sshexec config: ssh client: %w", err)
		}
		sshPath = p
	}
	var parser *fallbackParser
	if sshPath == "" {
		path := configFile
		switch {
		case configFile == "none":
			path = ""
		case !explicit && s.home != "":
			path = filepath.Join(s.home, ".ssh", "config")
		}
		var err error
		if parser, err = newFallbackParser(path, explicit, s.home, s.defaultUser); err != nil {
			return nil, err
		}
	}
	var classes *classifier
	if sshPath != "" {
		var files []cfgFile
		switch {
		case configFile == "none":
		case configFile != "":
			files = []cfgFile{{path: configFile, user: true}}
		default:
			files = []cfgFile{{path: filepath.Join(s.home, ".ssh", "config"), user: true}, {path: "/etc/ssh/ssh_config"}}
		}
		classes = newClassifier(files, s.home)
	}
	s.resolver = newResolver(sshPath, configFile, parser, classes)
	return s, nil
}

// expand replaces a leading "~" with the home directory.
func (s *settings) expand(p string) string { return expandTilde(p, s.home) }

func (s *settings) expandAll(ps []string) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = s.expand(p)
	}
	return out
}

// identity is one private key file to offer.
type identity struct {
	path     string
	explicit bool // a missing file is an error
}

// target is a Host with every setting resolved.
type target struct {
	name           string
	opts           options
	identities     []identity
	certFiles      []string
	agentSocket    string
	connectTimeout time.Duration
	check          *hostCheck
}

func (t target) addr() string { return net.JoinHostPort(t.opts.hostname, strconv.Itoa(t.opts.port)) }

// resolveHost resolves an inventory host: its explicit fields and
// Config's rank above ssh_config.
func (p *Pool) resolveHost(ctx context.Context, h Host) (target, error) {
	if h.Name == "" {
		return target{}, errors.New("host has no name")
	}
	if h.Port < 0 || h.Port > 65535 {
		return target{}, fmt.Errorf("host %s: port %d out of range", h.Name, h.Port)
	}
	s := p.s
	q := query{dest: cmp.Or(h.Alias, h.Name), hostname: h.Address, user: cmp.Or(h.User, s.User), jump: normalizeJump(s.Jump)}
	q.port = h.Port
	if q.port == 0 {
		q.port = s.Port
	}
	var explicit []string
	if h.IdentityFile != "" {
		explicit = append(explicit, s.expand(h.IdentityFile))
	}
	explicit = append(explicit, s.IdentityFiles...)
	return p.resolveQuery(ctx, h.Name, q, explicit)
}

// resolveHop resolves one hop of a jump chain, "[user@]host[:port]",
// reached through extra ("" when it is the first hop, whose own
// ssh_config then decides how it is reached).
func (p *Pool) resolveHop(ctx context.Context, spec, extra string) (target, error) {
	jh, err := parseJump(spec)
	if err != nil {
		return target{}, err
	}
	q := query{dest: jh.Name, user: jh.User, port: jh.Port, jump: extra}
	return p.resolveQuery(ctx, jh.Name, q, p.s.IdentityFiles)
}

func (p *Pool) resolveQuery(ctx context.Context, name string, q query, explicit []string) (target, error) {
	s := p.s
	for _, id := range explicit {
		if _, err := os.Stat(id); err != nil {
			return target{}, fmt.Errorf("%w: identity file %s: %w", ErrAuth, id, err)
		}
	}
	q.identities = explicit
	o, err := s.resolver.resolve(ctx, q)
	if err != nil {
		return target{}, err
	}
	if o.unsupported != "" {
		return target{}, fmt.Errorf("%w: %s for %s: sgerun does not support %s", ErrConfig, cmp.Or(s.SSHConfigFile, "ssh_config"), q.dest, o.unsupported)
	}
	if o.pubkeyAuthOff {
		return target{}, fmt.Errorf("%w: ssh_config says PubkeyAuthentication no for %s; sgerun authenticates with keys only", ErrAuth, q.dest)
	}
	if len(s.KnownHostsFiles) > 0 {
		o.userKnownHosts = slices.Clone(s.KnownHostsFiles)
	}
	for i, f := range o.userKnownHosts {
		o.userKnownHosts[i] = s.expand(f)
	}
	for i, f := range o.globalKnownHosts {
		o.globalKnownHosts[i] = s.expand(f)
	}
	t := target{name: name, opts: o, agentSocket: cmp.Or(s.AgentSocket, s.envAgent)}
	exp := map[string]bool{}
	for _, id := range explicit {
		exp[id] = true
	}
	for _, raw := range o.identityFiles {
		path, err := s.expandTokens(raw, o)
		if err != nil {
			return target{}, err
		}
		t.identities = append(t.identities, identity{path: path, explicit: exp[path]})
	}
	for _, raw := range o.certificateFiles {
		path, err := s.expandTokens(raw, o)
		if err != nil {
			return target{}, err
		}
		t.certFiles = append(t.certFiles, path)
	}
	switch {
	case s.AgentSocket != "":
	case o.identityAgent == "none":
		t.agentSocket = ""
	case o.identityAgent == "SSH_AUTH_SOCK", o.identityAgent == "":
	default:
		path, err := s.expandTokens(o.identityAgent, o)
		if err != nil {
			return target{}, err
		}
		t.agentSocket = path
	}
	if t.agentSocket == "none" {
		t.agentSocket = ""
	}
	t.connectTimeout = cmp.Or(s.ConnectTimeout, o.connectTimeout, defaultConnectTimeout)
	t.check = newHostCheck(&p.hostKeys, o, s.TOFU)
	return t, nil
}

// expandTokens expands "~" and the %-tokens OpenSSH allows in
// IdentityFile, CertificateFile and IdentityAgent, and ${VAR}.
func (s *settings) expandTokens(v string, o options) (string, error) {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '$' && i+1 < len(v) && v[i+1] == '{' {
			end := strings.IndexByte(v[i:], '}')
			if end < 0 {
				return "", fmt.Errorf("%w: %q: unterminated ${", ErrConfig, v)
			}
			name := v[i+2 : i+end]
			val, ok := os.LookupEnv(name)
			if !ok {
				return "", fmt.Errorf("%w: %q: environment variable %s is not set", ErrConfig, v, name)
			}
			b.WriteString(val)
			i += end
			continue
		}
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		i++
		if i == len(v) {
			return "", fmt.Errorf("%w: %q ends in %%", ErrConfig, v)
		}
		short, _, _ := strings.Cut(s.localHost, ".")
		switch v[i] {
		case '%':
			b.WriteByte('%')
		case 'd':
			b.WriteString(s.home)
		case 'u':
			b.WriteString(s.defaultUser)
		case 'i':
			b.WriteString(s.uid)
		case 'l':
			b.WriteString(s.localHost)
		case 'L':
			b.WriteString(short)
		case 'h':
			b.WriteString(o.hostname)
		case 'p':
			b.WriteString(strconv.Itoa(o.port))
		case 'r':
			b.WriteString(o.user)
		case 'n':
			b.WriteString(o.host)
		case 'k':
			b.WriteString(cmp.Or(o.hostKeyAlias, o.hostname))
		case 'j':
			b.WriteString(o.proxyJump)
		case 'C':
			sum := sha1.Sum([]byte(s.localHost + o.hostname + strconv.Itoa(o.port) + o.user + o.proxyJump))
			b.WriteString(hex.EncodeToString(sum[:]))
		default:
			return "", fmt.Errorf("%w: %q: unknown token %%%c", ErrConfig, v, v[i])
		}
	}
	return s.expand(b.String()), nil
}

// normalizeJump drops the blanks around the hops of a chain, which ssh -J
// refuses.
func normalizeJump(chain string) string {
	if chain == "" {
		return ""
	}
	hops := strings.Split(chain, ",")
	for i, h := range hops {
		hops[i] = strings.TrimSpace(h)
	}
	return strings.Join(hops, ",")
}

// parseJump splits "[user@]host[:port]" into a Host.
func parseJump(spec string) (Host, error) {
	var h Host
	rest := spec
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		h.User, rest = rest[:i], rest[i+1:]
	}
	if host, port, err := net.SplitHostPort(rest); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n <= 0 || n > 65535 {
			return Host{}, fmt.Errorf("jump host %q: invalid port %q", spec, port)
		}
		h.Name, h.Port = host, n
	} else {
		h.Name = strings.TrimSuffix(strings.TrimPrefix(rest, "["), "]")
	}
	if h.Name == "" {
		return Host{}, fmt.Errorf("jump host %q: no host name", spec)
	}
	return h, nil
}
