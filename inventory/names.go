package inventory

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// maxNameLen is the longest host name or address accepted (a DNS name).
const maxNameLen = 253

// ErrJump is matched (errors.Is) by every error of ParseJump.
var ErrJump = errors.New("bad jump host")

// Jump is a parsed ssh.jump bastion, "[user@]host[:port]".
type Jump struct {
	// User is empty when the spec names none; the transport then uses
	// ssh.user.
	User string
	// Host is a host name or an IP address (IPv6 without brackets).
	Host string
	// Port is 22 when the spec names none.
	Port int
}

// ParseJump parses a bastion spec "[user@]host[:port]". An IPv6 address
// must be written in brackets, "[2001:db8::1]:2222". Host and user follow
// the same rules as an inventory's hosts and users.
func ParseJump(spec string) (Jump, error) {
	j := Jump{Port: 22}
	rest := spec
	if u, h, ok := strings.Cut(rest, "@"); ok {
		if err := checkUser(u); err != nil {
			return Jump{}, fmt.Errorf("%w %q: %w", ErrJump, spec, err)
		}
		j.User, rest = u, h
	}
	host, port := rest, ""
	switch {
	case strings.HasPrefix(rest, "["):
		end := strings.Index(rest, "]")
		if end < 0 {
			return Jump{}, fmt.Errorf("%w %q: '[' without ']'", ErrJump, spec)
		}
		host, port = rest[1:end], rest[end+1:]
		if port != "" {
			p, ok := strings.CutPrefix(port, ":")
			if !ok {
				return Jump{}, fmt.Errorf("%w %q: unexpected %q after ']'", ErrJump, spec, port)
			}
			port = p
			if port == "" {
				return Jump{}, fmt.Errorf("%w %q: empty port", ErrJump, spec)
			}
		}
		if _, err := netip.ParseAddr(host); err != nil || !strings.Contains(host, ":") {
			return Jump{}, fmt.Errorf("%w %q: brackets must hold an IPv6 address", ErrJump, spec)
		}
	case strings.Count(rest, ":") > 1:
		return Jump{}, fmt.Errorf("%w %q: write an IPv6 address in brackets, [addr]:port", ErrJump, spec)
	default:
		var hasPort bool
		host, port, hasPort = strings.Cut(rest, ":")
		if hasPort && port == "" {
			return Jump{}, fmt.Errorf("%w %q: empty port", ErrJump, spec)
		}
	}
	addr, err := normalizeAddress(host)
	if err != nil {
		return Jump{}, fmt.Errorf("%w %q: %w", ErrJump, spec, err)
	}
	j.Host = addr
	if port != "" {
		n, err := parsePort(port)
		if err != nil {
			return Jump{}, fmt.Errorf("%w %q: %w", ErrJump, spec, err)
		}
		j.Port = n
	}
	return j, nil
}

// String renders the jump spec in the form ParseJump reads.
func (j Jump) String() string {
	host := j.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	s := host + ":" + strconv.Itoa(j.Port)
	if j.User != "" {
		s = j.User + "@" + s
	}
	return s
}

// parsePort parses a TCP port from 1 to 65535.
func parsePort(s string) (int, error) {
	if !isDigits(s) {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("port %q: %w", s, err)
	}
	if n < 1 || n > 65535 {
		return 0, fmt.Errorf("port %d is outside 1-65535", n)
	}
	return n, nil
}

// checkName accepts [A-Za-z0-9][A-Za-z0-9._-]*: a host or cell name that can
// never be read as a shell word, an option or a path outside its directory.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty name")
	}
	if len(s) > maxNameLen {
		return fmt.Errorf("longer than %d characters", maxNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c):
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return fmt.Errorf("character %q at offset %d is not allowed (use letters, digits, '.', '_' and '-', starting with a letter or digit)", rune(c), i)
		}
	}
	return nil
}

// checkUser accepts a login name: [A-Za-z0-9_][A-Za-z0-9._-]*, at most 64
// characters.
func checkUser(s string) error {
	if s == "" {
		return errors.New("empty user name")
	}
	if len(s) > 64 {
		return errors.New("user name longer than 64 characters")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isAlnum(c), c == '_':
		case i > 0 && (c == '.' || c == '-'):
		default:
			return fmt.Errorf("character %q at offset %d is not allowed in a user name", rune(c), i)
		}
	}
	return nil
}

// normalizeAddress checks an address: a host name or IPv4 address (the
// same rules as a host name), or an IPv6 address, bare or in brackets. It
// returns IPv6 addresses without brackets, ready for net.JoinHostPort.
func normalizeAddress(s string) (string, error) {
	inner, bracketed := strings.CutPrefix(s, "[")
	if bracketed {
		var ok bool
		if inner, ok = strings.CutSuffix(inner, "]"); !ok {
			return "", errors.New("'[' without ']'")
		}
	}
	if bracketed || strings.Contains(s, ":") {
		addr, err := netip.ParseAddr(inner)
		if err != nil || !addr.Is6() {
			return "", fmt.Errorf("%q is not an IPv6 address", inner)
		}
		if z := addr.Zone(); z != "" {
			if err := checkName(z); err != nil {
				return "", fmt.Errorf("IPv6 zone %q: %w", z, err)
			}
		}
		return inner, nil
	}
	if err := checkName(s); err != nil {
		return "", err
	}
	return s, nil
}

// checkPath refuses control characters (newlines, NUL, escapes) in a path.
func checkPath(s string) error {
	for i, c := range s {
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("control character %q at offset %d", c, i)
		}
	}
	return nil
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
