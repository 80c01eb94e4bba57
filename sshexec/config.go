package sshexec

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kevinburke/ssh_config"
)

// Config holds the settings shared by every connection of a Pool.
//
// Settings for one host are resolved in this order, first match wins:
// the fields of Host; the fields of Config that are set (non-zero); the
// user's ssh_config; the defaults documented below.
type Config struct {
	// User is the login user. Default: ssh_config User, then the current
	// user.
	User string
	// Port is the SSH port. Default: ssh_config Port, then 22.
	Port int
	// IdentityFiles are private key files to offer; "~" is expanded. A
	// missing file listed here is an error. When neither Host, Config nor
	// ssh_config name an identity file, ~/.ssh/id_ed25519, id_ecdsa and
	// id_rsa are tried and silently skipped when missing.
	IdentityFiles []string
	// KnownHostsFiles are the known_hosts files, hashed entries included;
	// "~" is expanded. Default ~/.ssh/known_hosts. Host keys are always
	// checked strictly.
	KnownHostsFiles []string
	// TOFU (trust on first use) accepts the key of a host that no
	// known_hosts file knows and appends it to the first known_hosts
	// file (created 0600 if missing). A key that differs from a known one
	// is always refused.
	TOFU bool
	// Jump is an optional jump host (bastion), "[user@]host[:port]", as
	// OpenSSH's ProxyJump. Default: ssh_config ProxyJump ("none" means no
	// jump host). Several hops are separated by commas and taken in order,
	// "outer,inner"; each jump host's own settings come from ssh_config,
	// but its own ProxyJump is ignored, as OpenSSH does.
	Jump string
	// ConnectTimeout bounds the TCP connect plus the SSH handshake of one
	// connection. Default 10s.
	ConnectTimeout time.Duration
	// SSHConfigFile is the ssh_config file to honour. "" means
	// ~/.ssh/config if it exists; "none" disables ssh_config. Host (with
	// HostName, %h expanded), User, Port, IdentityFile and ProxyJump are
	// honoured; other keywords are ignored.
	SSHConfigFile string
	// AgentSocket is the ssh-agent socket. Default $SSH_AUTH_SOCK; if
	// that is empty too, or the value is "none", no agent is used.
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
}

// Host is one target of a Pool.
type Host struct {
	// Name is the logical name (the inventory key). The Pool keeps one
	// connection per Name.
	Name string
	// Address is the address to dial. Default Name, rewritten by
	// ssh_config HostName. ssh_config is looked up by Address when it is
	// set and by Name otherwise; an explicit Address is never rewritten.
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

// settings is a Config with the defaults that do not depend on the host
// filled in.
type settings struct {
	Config
	home        string
	defaultUser string
	sshConfig   *ssh_config.Config
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
	if s.ConnectTimeout == 0 {
		s.ConnectTimeout = defaultConnectTimeout
	}
	if s.MaxHandshakes == 0 {
		s.MaxHandshakes = defaultMaxHandshakes
	}
	if s.MaxSessions == 0 {
		s.MaxSessions = defaultMaxSessions
	}
	if home, err := os.UserHomeDir(); err == nil {
		s.home = home
	}
	if u, err := user.Current(); err == nil {
		s.defaultUser = u.Username
	} else {
		s.defaultUser = os.Getenv("USER")
	}
	if s.AgentSocket == "" {
		s.AgentSocket = os.Getenv("SSH_AUTH_SOCK")
	}
	if s.AgentSocket == "none" {
		s.AgentSocket = ""
	}
	if len(s.KnownHostsFiles) == 0 {
		if s.home == "" {
			return nil, errors.New("sshexec config: no known_hosts file given and no home directory")
		}
		s.KnownHostsFiles = []string{filepath.Join(s.home, ".ssh", "known_hosts")}
	}
	s.KnownHostsFiles = s.expandAll(s.KnownHostsFiles)
	s.IdentityFiles = s.expandAll(s.IdentityFiles)

	if err := s.loadSSHConfig(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *settings) loadSSHConfig() error {
	path := s.SSHConfigFile
	explicit := true
	switch path {
	case "none":
		return nil
	case "":
		if s.home == "" {
			return nil
		}
		path = filepath.Join(s.home, ".ssh", "config")
		explicit = false
	default:
		path = s.expand(path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("read ssh_config: %w", err)
	}
	c, err := ssh_config.Decode(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("parse ssh_config %s: %w", path, err)
	}
	s.sshConfig = c
	return nil
}

// expand replaces a leading "~" with the home directory.
func (s *settings) expand(p string) string {
	if s.home == "" {
		return p
	}
	if p == "~" {
		return s.home
	}
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(s.home, rest)
	}
	return p
}

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
	name       string
	address    string
	port       int
	user       string
	identities []identity
	jump       string
}

func (t target) addr() string { return net.JoinHostPort(t.address, strconv.Itoa(t.port)) }

// resolve fills in h from Config, ssh_config and the defaults. A jump host
// is looked up only when allowJump is set.
func (s *settings) resolve(h Host, allowJump bool) (target, error) {
	if h.Name == "" && h.Address == "" {
		return target{}, errors.New("host has no name")
	}
	if h.Port < 0 || h.Port > 65535 {
		return target{}, fmt.Errorf("host %s: port %d out of range", h.Name, h.Port)
	}
	alias := h.Address
	if alias == "" {
		alias = h.Name
	}
	get := func(key string) (string, error) {
		if s.sshConfig == nil {
			return "", nil
		}
		v, err := s.sshConfig.Get(alias, key)
		if err != nil {
			return "", fmt.Errorf("ssh_config %s for %s: %w", key, alias, err)
		}
		return v, nil
	}
	t := target{name: h.Name, address: h.Address, port: h.Port, user: h.User}

	if t.address == "" {
		t.address = alias
		hn, err := get("HostName")
		if err != nil {
			return target{}, err
		}
		if hn != "" {
			t.address = strings.NewReplacer("%h", alias, "%%", "%").Replace(hn)
		}
	}

	if t.user == "" {
		t.user = s.User
	}
	if t.user == "" {
		u, err := get("User")
		if err != nil {
			return target{}, err
		}
		t.user = u
	}
	if t.user == "" {
		t.user = s.defaultUser
	}
	if t.user == "" {
		return target{}, fmt.Errorf("host %s: no user given and the current user is unknown", h.Name)
	}

	if t.port == 0 {
		t.port = s.Port
	}
	if t.port == 0 {
		p, err := get("Port")
		if err != nil {
			return target{}, err
		}
		if p != "" {
			n, err := strconv.Atoi(p)
			if err != nil || n <= 0 || n > 65535 {
				return target{}, fmt.Errorf("ssh_config port %q for %s: invalid", p, alias)
			}
			t.port = n
		}
	}
	if t.port == 0 {
		t.port = 22
	}

	if h.IdentityFile != "" {
		t.identities = append(t.identities, identity{path: s.expand(h.IdentityFile), explicit: true})
	}
	for _, p := range s.IdentityFiles {
		t.identities = append(t.identities, identity{path: p, explicit: true})
	}
	if s.sshConfig != nil {
		files, err := s.sshConfig.GetAll(alias, "IdentityFile")
		if err != nil {
			return target{}, fmt.Errorf("ssh_config IdentityFile for %s: %w", alias, err)
		}
		for _, p := range files {
			t.identities = append(t.identities, identity{path: s.expand(p)})
		}
	}
	if len(t.identities) == 0 && s.home != "" {
		for _, n := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			t.identities = append(t.identities, identity{path: filepath.Join(s.home, ".ssh", n)})
		}
	}

	if allowJump {
		j := s.Jump
		if j == "" {
			v, err := get("ProxyJump")
			if err != nil {
				return target{}, err
			}
			j = v
		}
		if j == "none" {
			j = ""
		}
		t.jump = j
	}
	return t, nil
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
