package sshexec

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// keyFile is the parsed content of one identity file.
type keyFile struct {
	signer    ssh.Signer
	missing   bool
	encrypted bool
	err       error
}

// keyCache parses each identity file once per Pool.
type keyCache struct {
	mu    sync.Mutex
	files map[string]keyFile
}

func (c *keyCache) load(path string) keyFile {
	c.mu.Lock()
	defer c.mu.Unlock()
	if k, ok := c.files[path]; ok {
		return k
	}
	k := parseKeyFile(path)
	if c.files == nil {
		c.files = make(map[string]keyFile)
	}
	c.files[path] = k
	return k
}

func parseKeyFile(path string) keyFile {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return keyFile{missing: true, err: fmt.Errorf("identity file %s: %w", path, err)}
		}
		return keyFile{err: fmt.Errorf("identity file %s: %w", path, err)}
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		var pm *ssh.PassphraseMissingError
		if errors.As(err, &pm) {
			return keyFile{encrypted: true}
		}
		return keyFile{err: fmt.Errorf("identity file %s: %w", path, err)}
	}
	return keyFile{signer: signer}
}

// credentials are the keys offered for one handshake.
type credentials struct {
	signers   []ssh.Signer
	offered   []string // where each signer came from, for errors
	encrypted []string // passphrase-protected files that were skipped
	agentErr  error    // why the agent could not be used, if one was configured
	closer    func()
}

// hint explains, after a refused authentication, what may be missing.
func (c *credentials) hint() string {
	var parts []string
	if len(c.offered) > 0 {
		list := c.offered
		if len(list) > 5 {
			list = append(slices.Clone(list[:5]), fmt.Sprintf("and %d more", len(c.offered)-5))
		}
		parts = append(parts, "offered "+strings.Join(list, ", ")+
			"; one of them must be in the user's authorized_keys on the host, or be a certificate its TrustedUserCAKeys accepts")
	}
	if len(c.encrypted) > 0 {
		parts = append(parts, fmt.Sprintf("identity file %s is passphrase-protected; load it into ssh-agent with ssh-add",
			strings.Join(c.encrypted, ", ")))
	}
	if c.agentErr != nil {
		parts = append(parts, c.agentErr.Error())
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// credentials gathers the keys for t in OpenSSH's order (pubkey_prepare):
// CertificateFile certificates; identity files the agent also holds, with
// the agent's key; the agent's other keys (not with IdentitiesOnly); the
// remaining identity files, each followed by its "<file>-cert.pub". The
// caller must call closer when the handshake is over.
func (p *Pool) credentials(t target) (*credentials, error) {
	cr := &credentials{closer: func() {}}
	var agentSigners []ssh.Signer
	if sock := t.agentSocket; sock != "" {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			cr.agentErr = fmt.Errorf("ssh-agent %s: %w", sock, err)
		} else {
			cr.closer = func() { _ = conn.Close() }
			agentSigners, err = agent.NewClient(conn).Signers()
			if err != nil {
				cr.agentErr = fmt.Errorf("ssh-agent %s: %w", sock, err)
			}
		}
	}
	// One identity: a public key, and the signer for it if we have one.
	type ident struct {
		pub    ssh.PublicKey
		signer ssh.Signer
		path   string
	}
	var files []*ident
	for _, id := range t.identities {
		k := p.keys.load(id.path)
		var pub ssh.PublicKey
		switch {
		case k.missing && !id.explicit:
			continue
		case k.encrypted:
			pub = loadPub(id.path + ".pub")
			cr.encrypted = append(cr.encrypted, id.path)
			if pub == nil {
				continue
			}
		case k.err != nil:
			cr.closer()
			return nil, fmt.Errorf("%w: %w", ErrAuth, k.err)
		default:
			pub = k.signer.PublicKey()
		}
		files = append(files, &ident{pub: pub, signer: k.signer, path: id.path})
		if c, err := loadCert(id.path + "-cert.pub"); err == nil && keysEqual(c.Key, pub) {
			files = append(files, &ident{pub: c, path: id.path + "-cert.pub"})
		}
	}
	var preferred []*ident
	for _, path := range t.certFiles {
		if c, err := loadCert(path); err == nil {
			preferred = append(preferred, &ident{pub: c, path: path})
		}
	}
	var others []*ident
	for _, as := range agentSigners {
		found := false
		for i, f := range files {
			if keysEqual(f.pub, as.PublicKey()) {
				f.signer = as
				preferred = append(preferred, f)
				files = append(files[:i], files[i+1:]...)
				found = true
				break
			}
		}
		if !found && !t.opts.identitiesOnly {
			others = append(others, &ident{pub: as.PublicKey(), signer: as})
		}
	}
	all := append(append(preferred, others...), files...)
	// A certificate signs with the private key of the plain key it
	// certifies, from an identity file or the agent.
	plain := func(key ssh.PublicKey) ssh.Signer {
		for _, f := range all {
			if f.signer != nil && keysEqual(f.pub, key) {
				return f.signer
			}
		}
		for _, as := range agentSigners {
			if keysEqual(as.PublicKey(), key) {
				return as
			}
		}
		return nil
	}
	seen := map[string]bool{}
	for _, f := range all {
		s := f.signer
		if c, ok := f.pub.(*ssh.Certificate); ok && s == nil {
			base := plain(c.Key)
			if base == nil {
				continue
			}
			cs, err := ssh.NewCertSigner(c, base)
			if err != nil {
				continue
			}
			s = cs
		}
		if s == nil {
			continue
		}
		k := string(s.PublicKey().Marshal())
		if !seen[k] {
			seen[k] = true
			cr.signers = append(cr.signers, s)
			what := f.path
			if what == "" {
				what = "agent key"
			}
			if _, isCert := s.PublicKey().(*ssh.Certificate); isCert && !strings.HasSuffix(what, "cert.pub") {
				what += " (certificate)"
			}
			cr.offered = append(cr.offered, what+" "+ssh.FingerprintSHA256(s.PublicKey()))
		}
	}
	if len(cr.signers) == 0 {
		cr.closer()
		if len(cr.encrypted) > 0 {
			return nil, fmt.Errorf("%w: identity file %s is passphrase-protected; load it into ssh-agent with ssh-add",
				ErrAuth, strings.Join(cr.encrypted, ", "))
		}
		msg := "no identity file and no ssh-agent key to offer"
		if t.opts.identitiesOnly {
			msg += " (IdentitiesOnly yes: agent keys count only when an IdentityFile names them)"
		}
		if cr.agentErr != nil {
			msg += ": " + cr.agentErr.Error()
		}
		return nil, fmt.Errorf("%w: %s", ErrAuth, msg)
	}
	return cr, nil
}

// loadCert reads an OpenSSH certificate file.
func loadCert(path string) (*ssh.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil, fmt.Errorf("certificate %s: %w", path, err)
	}
	c, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("certificate %s: not a certificate", path)
	}
	return c, nil
}

// loadPub reads a public key file, or returns nil.
func loadPub(path string) ssh.PublicKey {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(data)
	if err != nil {
		return nil
	}
	return pub
}
