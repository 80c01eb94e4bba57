package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
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
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: generate user key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("sshtest: user key signer: %v", err)
	}
	var block *pem.Block
	if passphrase != nil {
		block, err = ssh.MarshalPrivateKeyWithPassphrase(priv, "sshtest", passphrase)
	} else {
		block, err = ssh.MarshalPrivateKey(priv, "sshtest")
	}
	if err != nil {
		t.Fatalf("sshtest: marshal user key: %v", err)
	}
	path := filepath.Join(t.TempDir(), "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatalf("sshtest: write user key: %v", err)
	}
	return signer, path
}
