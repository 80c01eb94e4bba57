package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"
)

// NewUserKey generates an ed25519 user key and writes its private half,
// unencrypted and in OpenSSH PEM form, to a file (mode 0600) in a temporary
// directory. It returns the signer and the file's path.
func NewUserKey(t testing.TB) (signer ssh.Signer, privPEMPath string) {
	t.Helper()
	return newUserKey(t, nil)
}

// NewEncryptedUserKey is NewUserKey with the private key file encrypted
// with passphrase.
func NewEncryptedUserKey(t testing.TB, passphrase string) (signer ssh.Signer, privPEMPath string) {
	t.Helper()
	return newUserKey(t, []byte(passphrase))
}

func newUserKey(t testing.TB, passphrase []byte) (ssh.Signer, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "id_ed25519")
	signer, err := writeUserKey(path, passphrase)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	return signer, path
}

// WriteUserKey generates an ed25519 user key, writes its private half,
// unencrypted and in OpenSSH PEM form, to path (mode 0600) and its public
// half to path+".pub", as ssh-keygen does. It is NewUserKey outside of a
// test.
func WriteUserKey(path string) (ssh.Signer, error) {
	signer, err := writeUserKey(path, nil)
	if err != nil {
		return nil, err
	}
	pub := ssh.MarshalAuthorizedKey(signer.PublicKey())
	if err := os.WriteFile(path+".pub", pub, 0o644); err != nil {
		return nil, fmt.Errorf("write user key: %w", err)
	}
	return signer, nil
}

func writeUserKey(path string, passphrase []byte) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate user key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("user key signer: %w", err)
	}
	var block *pem.Block
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "sshtest", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "sshtest")
	}
	if err != nil {
		return nil, fmt.Errorf("marshal user key: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("write user key: %w", err)
	}
	return signer, nil
}
