package sshexec

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// hostKeys checks host keys against known_hosts files and, with TOFU,
// appends unknown ones to the first file.
type hostKeys struct {
	files []string
	tofu  bool
	// probe is a random key no known_hosts file can hold; checking it
	// lists the keys known for a host.
	probe ssh.PublicKey

	mu sync.Mutex
	cb ssh.HostKeyCallback // nil: (re)load on next use
}

func newHostKeys(files []string, tofu bool) (*hostKeys, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate probe key: %w", err)
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("probe key: %w", err)
	}
	k := &hostKeys{files: files, tofu: tofu, probe: probe}
	if _, err := k.callback(); err != nil {
		return nil, err
	}
	return k, nil
}

// callback returns the current known_hosts database, loading it if needed.
func (k *hostKeys) callback() (ssh.HostKeyCallback, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.loadLocked()
}

func (k *hostKeys) loadLocked() (ssh.HostKeyCallback, error) {
	if k.cb != nil {
		return k.cb, nil
	}
	var existing []string
	for _, f := range k.files {
		if _, err := os.Stat(f); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("known_hosts %s: %w", f, err)
		}
		existing = append(existing, f)
	}
	if len(existing) == 0 {
		k.cb = func(string, net.Addr, ssh.PublicKey) error { return &knownhosts.KeyError{} }
		return k.cb, nil
	}
	cb, err := knownhosts.New(existing...)
	if err != nil {
		return nil, fmt.Errorf("load known_hosts: %w", err)
	}
	k.cb = cb
	return cb, nil
}

// algorithms returns the host key algorithms to accept from addr: those
// of the keys known_hosts holds for it, so that a server preferring
// another key type cannot cause a false mismatch (golang/go#29286). It
// returns nil, meaning the library's defaults, for an unknown host.
func (k *hostKeys) algorithms(addr string) ([]string, error) {
	cb, err := k.callback()
	if err != nil {
		return nil, err
	}
	var ke *knownhosts.KeyError
	if !errors.As(cb(addr, &net.TCPAddr{IP: net.IPv4zero}, k.probe), &ke) {
		return nil, nil
	}
	var algos []string
	seen := map[string]bool{}
	add := func(a string) {
		if !seen[a] {
			seen[a] = true
			algos = append(algos, a)
		}
	}
	for _, w := range ke.Want {
		switch t := w.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			add(ssh.KeyAlgoRSASHA512)
			add(ssh.KeyAlgoRSASHA256)
			add(ssh.KeyAlgoRSA)
		default:
			add(t)
		}
	}
	return algos, nil
}

// check verifies key for hostname ("host:port", as dialled).
func (k *hostKeys) check(hostname string, remote net.Addr, key ssh.PublicKey) error {
	cb, err := k.callback()
	if err != nil {
		return err
	}
	err = k.classify(hostname, key, cb(hostname, remote, key))
	if errors.Is(err, ErrUnknownHost) && k.tofu {
		return k.trust(hostname, remote, key)
	}
	return err
}

func (k *hostKeys) classify(hostname string, key ssh.PublicKey, err error) error {
	if err == nil {
		return nil
	}
	fp := ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		return fmt.Errorf("%w: %s presented %s key %s, which %s:%d revokes",
			ErrHostKeyMismatch, hostname, key.Type(), fp, re.Revoked.Filename, re.Revoked.Line)
	case errors.As(err, &ke) && len(ke.Want) > 0:
		w := ke.Want[0]
		return fmt.Errorf("%w: %s presented %s key %s but %s:%d has %s key %s; refusing to connect "+
			"(if the host was reinstalled, remove the old key with ssh-keygen -R)",
			ErrHostKeyMismatch, hostname, key.Type(), fp, w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key))
	case errors.As(err, &ke):
		host, port, splitErr := net.SplitHostPort(hostname)
		if splitErr != nil {
			host, port = hostname, "22"
		}
		return fmt.Errorf("%w: %s (%s key %s) is not in %s; after checking the fingerprint, "+
			"add it with `ssh-keyscan -p %s %s >> %s` or enable TOFU",
			ErrUnknownHost, hostname, key.Type(), fp, strings.Join(k.files, ", "), port, host, k.files[0])
	default:
		return fmt.Errorf("check host key of %s: %w", hostname, err)
	}
}

// trust appends key for hostname to the first known_hosts file, unless a
// concurrent connection already did (or added a different key).
func (k *hostKeys) trust(hostname string, remote net.Addr, key ssh.PublicKey) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.cb = nil
	cb, err := k.loadLocked()
	if err != nil {
		return err
	}
	err = k.classify(hostname, key, cb(hostname, remote, key))
	if !errors.Is(err, ErrUnknownHost) {
		return err
	}
	if err := appendLine(k.files[0], knownhosts.Line([]string{hostname}, key)); err != nil {
		return fmt.Errorf("tofu %s: %w", hostname, err)
	}
	k.cb = nil
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
