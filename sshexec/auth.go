package sshexec

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
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
	encrypted []string // passphrase-protected files that were skipped
	agentErr  error    // why the agent could not be used, if one was configured
	closer    func()
}

// hint explains, after a refused authentication, what may be missing.
func (c *credentials) hint() string {
	var parts []string
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

// credentials gathers the keys for t as OpenSSH orders them: identity
// files (each with its certificate, from CertificateFile or
// "<file>-cert.pub", offered first), then the agent's keys (with
// IdentitiesOnly, only those matching an identity file or certificate),
// then OpenSSH's default files. The caller must call closer when the
// handshake is over.
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
	var certs []*ssh.Certificate
	for _, path := range t.certFiles {
		c, err := loadCert(path)
		if err != nil {
			continue // OpenSSH skips unreadable certificate files
		}
		certs = append(certs, c)
	}
	seen := map[string]bool{}
	add := func(list *[]ssh.Signer, s ssh.Signer) {
		k := string(s.PublicKey().Marshal())
		if !seen[k] {
			seen[k] = true
			*list = append(*list, s)
		}
	}
	// withCerts adds the certificates for s, then s.
	withCerts := func(list *[]ssh.Signer, s ssh.Signer, extra *ssh.Certificate) {
		for _, c := range append(certs, extra) {
			if c == nil || !keysEqual(c.Key, s.PublicKey()) {
				continue
			}
			if cs, err := ssh.NewCertSigner(c, s); err == nil {
				add(list, cs)
			}
		}
		add(list, s)
	}
	// wanted are the public keys of the identity files, for
	// IdentitiesOnly.
	wanted := map[string]bool{}
	for _, c := range certs {
		wanted[string(c.Key.Marshal())] = true
	}
	var first, defaults []ssh.Signer
	for _, id := range t.identities {
		k := p.keys.load(id.path)
		if pub := loadPub(id.path + ".pub"); pub != nil {
			wanted[string(pub.Marshal())] = true
		}
		side, _ := loadCert(id.path + "-cert.pub")
		switch {
		case k.missing && !id.explicit:
			continue
		case k.encrypted:
			cr.encrypted = append(cr.encrypted, id.path)
		case k.err != nil:
			cr.closer()
			return nil, fmt.Errorf("%w: %w", ErrAuth, k.err)
		case id.fallback:
			wanted[string(k.signer.PublicKey().Marshal())] = true
			withCerts(&defaults, k.signer, side)
		default:
			wanted[string(k.signer.PublicKey().Marshal())] = true
			withCerts(&first, k.signer, side)
		}
	}
	for _, s := range agentSigners {
		if t.opts.identitiesOnly && !wanted[string(s.PublicKey().Marshal())] {
			continue
		}
		withCerts(&first, s, nil)
	}
	cr.signers = append(first, defaults...)
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
