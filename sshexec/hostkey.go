package sshexec

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
)

// Markers of a known_hosts line.
const (
	markNone = iota
	markCA
	markRevoked
)

// khLine is one entry of a known_hosts file.
type khLine struct {
	file     string
	line     int
	marker   int
	patterns []string // lower-cased; nil for a hashed entry
	salt     []byte   // hashed entry
	hash     []byte
	key      ssh.PublicKey
}

// matches reports whether name ("host" or "[host]:port", lower case)
// matches the line's host field, as OpenSSH's match_hostname: a negated
// pattern that matches excludes the name.
func (l *khLine) matches(name string) bool {
	if l.patterns == nil {
		m := hmac.New(sha1.New, l.salt)
		m.Write([]byte(name))
		return hmac.Equal(m.Sum(nil), l.hash)
	}
	found := false
	for _, p := range l.patterns {
		if neg, ok := strings.CutPrefix(p, "!"); ok {
			if wildMatch(neg, name) {
				return false
			}
			continue
		}
		if wildMatch(p, name) {
			found = true
		}
	}
	return found
}

// wildMatch matches s against an OpenSSH pattern with '*' and '?'.
func wildMatch(p, s string) bool {
	for len(p) > 0 {
		switch p[0] {
		case '*':
			for len(p) > 0 && p[0] == '*' {
				p = p[1:]
			}
			if p == "" {
				return true
			}
			for i := 0; i <= len(s); i++ {
				if wildMatch(p, s[i:]) {
					return true
				}
			}
			return false
		case '?':
			if s == "" {
				return false
			}
		default:
			if s == "" || s[0] != p[0] {
				return false
			}
		}
		p, s = p[1:], s[1:]
	}
	return s == ""
}

// parseKnownHosts reads one known_hosts file; a missing file is empty.
func parseKnownHosts(path string) ([]khLine, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("known_hosts %s: %w", path, err)
	}
	var out []khLine
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		text := strings.TrimSpace(sc.Text())
		if text == "" || text[0] == '#' {
			continue
		}
		l := khLine{file: path, line: n}
		if strings.HasPrefix(text, "@") {
			m, rest, _ := strings.Cut(text, " ")
			switch m {
			case "@cert-authority":
				l.marker = markCA
			case "@revoked":
				l.marker = markRevoked
			default:
				continue // OpenSSH ignores unknown markers' lines
			}
			text = strings.TrimSpace(rest)
		}
		hosts, keyText, ok := strings.Cut(text, " ")
		if !ok {
			continue
		}
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(strings.TrimSpace(keyText)))
		if err != nil {
			continue // OpenSSH skips lines it cannot parse
		}
		l.key = key
		if rest, ok := strings.CutPrefix(hosts, "|1|"); ok {
			salt64, hash64, ok := strings.Cut(rest, "|")
			salt, err1 := base64.StdEncoding.DecodeString(salt64)
			hash, err2 := base64.StdEncoding.DecodeString(hash64)
			if !ok || err1 != nil || err2 != nil {
				continue
			}
			l.salt, l.hash = salt, hash
		} else {
			l.patterns = strings.Split(strings.ToLower(hosts), ",")
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("known_hosts %s: %w", path, err)
	}
	return out, nil
}

// hostKeys holds the known_hosts files a Pool has read, each parsed once
// and re-read after TOFU appended to it.
type hostKeys struct {
	tofuMu sync.Mutex // serialises TOFU appends

	mu    sync.Mutex
	files map[string][]khLine
}

func (k *hostKeys) lines(files []string) ([]khLine, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	var all []khLine
	for _, f := range files {
		ls, ok := k.files[f]
		if !ok {
			var err error
			if ls, err = parseKnownHosts(f); err != nil {
				return nil, err
			}
			if k.files == nil {
				k.files = make(map[string][]khLine)
			}
			k.files[f] = ls
		}
		all = append(all, ls...)
	}
	return all, nil
}

func (k *hostKeys) forget(file string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.files, file)
}

// hostCheck verifies the host key of one target as OpenSSH does.
type hostCheck struct {
	k *hostKeys
	// names are the known_hosts names to look up, in order: the
	// HostKeyAlias, or "host" / "[host]:port"; for a non-22 port without
	// alias the bare host follows, which OpenSSH also accepts.
	names     []string
	principal string // what a host certificate must name
	display   string // "host:port" for messages
	userFiles []string
	files     []string // user then global files
	tofu      bool
	hash      bool
}

func newHostCheck(k *hostKeys, o options, tofu bool) *hostCheck {
	host := strings.ToLower(o.hostname)
	c := &hostCheck{k: k, principal: host, display: net.JoinHostPort(o.hostname, strconv.Itoa(o.port)), hash: o.hashKnownHosts}
	switch {
	case o.hostKeyAlias != "":
		c.names = []string{strings.ToLower(o.hostKeyAlias)}
		c.principal = strings.ToLower(o.hostKeyAlias)
	case o.port != 22:
		c.names = []string{"[" + host + "]:" + strconv.Itoa(o.port), host}
	default:
		c.names = []string{host}
	}
	c.userFiles = o.userKnownHosts
	c.files = append(slices.Clone(o.userKnownHosts), o.globalKnownHosts...)
	// StrictHostKeyChecking yes in ssh_config is stricter than TOFU and
	// wins; ask (the default), accept-new and no leave the inventory's
	// choice, and never accept a changed key.
	c.tofu = tofu && o.strictHostKeys != "yes"
	return c
}

// algorithms orders the host key algorithms as OpenSSH's
// order_hostkeyalgs: those of the keys known for the host first
// (certificate types first when a CA is known), then the others, so that
// a server with several keys presents one we can check.
func (c *hostCheck) algorithms(configured []string) ([]string, error) {
	lines, err := c.k.lines(c.files)
	if err != nil {
		return nil, err
	}
	supported := map[string]bool{}
	for _, a := range ssh.SupportedAlgorithms().HostKeys {
		supported[a] = true
	}
	var base []string
	for _, a := range configured {
		if supported[a] {
			base = append(base, a)
		}
	}
	if len(base) == 0 {
		base = ssh.SupportedAlgorithms().HostKeys
	}
	known := map[string]bool{}
	ca := false
	for i := range lines {
		l := &lines[i]
		if l.marker == markRevoked || !c.matchAny(l) {
			continue
		}
		if l.marker == markCA {
			ca = true
			continue
		}
		known[l.key.Type()] = true
	}
	var first, rest []string
	for _, a := range base {
		isCert := strings.Contains(a, "-cert-v01@")
		plain := certPlainType(a)
		switch {
		case ca && isCert:
			first = append(first, a)
		case !isCert && known[plain]:
			first = append(first, a)
		default:
			rest = append(rest, a)
		}
	}
	return append(first, rest...), nil
}

// certPlainType maps an algorithm to the key type known_hosts stores.
func certPlainType(a string) string {
	switch a {
	case ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512:
		return ssh.KeyAlgoRSA
	}
	return a
}

func (c *hostCheck) matchAny(l *khLine) bool {
	for _, n := range c.names {
		if l.matches(n) {
			return true
		}
	}
	return false
}

// check is the HostKeyCallback.
func (c *hostCheck) check(_ string, _ net.Addr, key ssh.PublicKey) error {
	lines, err := c.k.lines(c.files)
	if err != nil {
		return err
	}
	err = c.verify(lines, key)
	if errors.Is(err, ErrUnknownHost) && c.tofu {
		return c.trust(key)
	}
	return err
}

func (c *hostCheck) verify(lines []khLine, key ssh.PublicKey) error {
	for i := range lines {
		l := &lines[i]
		if l.marker != markRevoked {
			continue
		}
		if keysEqual(l.key, key) {
			return fmt.Errorf("%w: %w: %w: %s presented %s key %s, which %s:%d marks @revoked; the host must get a new key",
				ErrHostKey, ErrHostKeyMismatch, ErrHostKeyRevoked, c.display, key.Type(), ssh.FingerprintSHA256(key), l.file, l.line)
		}
		if cert, ok := key.(*ssh.Certificate); ok && keysEqual(l.key, cert.Key) {
			return fmt.Errorf("%w: %w: %w: %s presented a certificate for %s key %s, which %s:%d marks @revoked; the host must get a new key",
				ErrHostKey, ErrHostKeyMismatch, ErrHostKeyRevoked, c.display, cert.Key.Type(), ssh.FingerprintSHA256(cert.Key), l.file, l.line)
		}
		if cert, ok := key.(*ssh.Certificate); ok && keysEqual(l.key, cert.SignatureKey) {
			return fmt.Errorf("%w: %w: %w: %s presented a certificate signed by CA %s, which %s:%d marks @revoked",
				ErrHostKey, ErrHostKeyMismatch, ErrHostKeyRevoked, c.display, ssh.FingerprintSHA256(cert.SignatureKey), l.file, l.line)
		}
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		for i := range lines {
			l := &lines[i]
			if l.marker != markCA || !keysEqual(l.key, cert.SignatureKey) || !c.matchAny(l) {
				continue
			}
			if cert.CertType != ssh.HostCert {
				return fmt.Errorf("%w: %w: %w: %s presented a user certificate as its host key",
					ErrHostKey, ErrHostKeyMismatch, ErrHostCertificate, c.display)
			}
			checker := &ssh.CertChecker{}
			if err := checker.CheckCert(c.principal, cert); err != nil {
				return fmt.Errorf("%w: %w: %w: %s presented a host certificate from the CA at %s:%d that is not valid for %q: %w "+
					"(have the site CA re-sign the host key with this name as principal, ssh-keygen -s CA -h -n %s)",
					ErrHostKey, ErrHostKeyMismatch, ErrHostCertificate, c.display, l.file, l.line, c.principal, err, c.principal)
			}
			return nil
		}
		// No trusted CA: OpenSSH falls back to the certificate's plain key.
		key = cert.Key
		if err := c.verifyPlain(lines, key); err != nil {
			if errors.Is(err, ErrUnknownHost) {
				return fmt.Errorf("%w (the host presents a certificate signed by CA %s: if that is your site CA, "+
					"trust it with a line `@cert-authority <host pattern> <CA public key>` in %s)",
					err, ssh.FingerprintSHA256(cert.SignatureKey), c.firstUserFile())
			}
			return err
		}
		return nil
	}
	return c.verifyPlain(lines, key)
}

// verifyPlain looks a plain key up.
func (c *hostCheck) verifyPlain(lines []khLine, key ssh.PublicKey) error {
	// Look the key up under each name in turn; a different key (of any
	// type) under the first name is a change, and stops the lookup.
	// The bare host, for a non-22 port, only accepts (as OpenSSH: a
	// different key there leaves the host unknown).
	for n, name := range c.names {
		var changed *khLine
		for i := range lines {
			l := &lines[i]
			if l.marker != markNone || !l.matches(name) {
				continue
			}
			if keysEqual(l.key, key) {
				return nil
			}
			// OpenSSH 9 reports a change for a known key of any type.
			if n == 0 && changed == nil {
				changed = l
			}
		}
		if changed != nil {
			return fmt.Errorf("%w: %w: %s presented %s key %s but %s:%d has %s key %s for %s; refusing to connect "+
				"(if the host was reinstalled, check the new fingerprint and remove the old key with ssh-keygen -R '%s' -f %s)",
				ErrHostKey, ErrHostKeyMismatch, c.display, key.Type(), ssh.FingerprintSHA256(key), changed.file, changed.line,
				changed.key.Type(), ssh.FingerprintSHA256(changed.key), name, name, changed.file)
		}
	}
	host, port, err := net.SplitHostPort(c.display)
	if err != nil {
		host, port = c.display, "22"
	}
	where := "no known_hosts file"
	if len(c.files) > 0 {
		where = strings.Join(c.files, ", ")
	}
	add := "add it with `ssh-keyscan -p " + port + " " + host + " >> " + c.firstUserFile() + "`"
	if c.names[0] != strings.ToLower(host) && !strings.HasPrefix(c.names[0], "[") {
		add = "add it under the HostKeyAlias " + c.names[0] + " in " + c.firstUserFile()
	}
	return fmt.Errorf("%w: %w: %s (%s key %s) is not in %s under %s; after checking the fingerprint, %s, or enable ssh.tofu",
		ErrHostKey, ErrUnknownHost, c.display, key.Type(), ssh.FingerprintSHA256(key), where, c.names[0], add)
}

func (c *hostCheck) firstUserFile() string {
	if len(c.userFiles) == 0 {
		return "~/.ssh/known_hosts"
	}
	return c.userFiles[0]
}

func keysEqual(a, b ssh.PublicKey) bool {
	return a.Type() == b.Type() && bytes.Equal(a.Marshal(), b.Marshal())
}

// trust appends key under the first name to the first user known_hosts
// file, hashed with HashKnownHosts, unless a concurrent connection already
// did (or added a different key).
func (c *hostCheck) trust(key ssh.PublicKey) error {
	if len(c.userFiles) == 0 {
		return fmt.Errorf("%w: %w: tofu %s: no user known_hosts file", ErrHostKey, ErrUnknownHost, c.display)
	}
	file := c.userFiles[0]
	c.k.tofuMu.Lock()
	defer c.k.tofuMu.Unlock()
	c.k.forget(file)
	lines, err := c.k.lines(c.files)
	if err != nil {
		return err
	}
	if err := c.verify(lines, key); !errors.Is(err, ErrUnknownHost) {
		return err
	}
	if cert, ok := key.(*ssh.Certificate); ok {
		key = cert.Key
	}
	name := c.names[0]
	if c.hash {
		salt := make([]byte, sha1.Size)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("tofu %s: %w", c.display, err)
		}
		m := hmac.New(sha1.New, salt)
		m.Write([]byte(name))
		name = "|1|" + base64.StdEncoding.EncodeToString(salt) + "|" + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	line := name + " " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	if err := appendLine(file, line); err != nil {
		return fmt.Errorf("tofu %s: %w", c.display, err)
	}
	c.k.forget(file)
	return nil
}

func appendLine(path, line string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create known_hosts directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open known_hosts: %w", err)
	}
	prefix := ""
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err == nil && last[0] != '\n' {
			prefix = "\n"
		}
	}
	if _, err := f.WriteString(prefix + line + "\n"); err != nil {
		_ = f.Close()
		return fmt.Errorf("append to known_hosts %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close known_hosts %s: %w", path, err)
	}
	return nil
}
