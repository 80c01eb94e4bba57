package sshexec

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Match them with errors.Is; the wrapping error carries
// the host and the details.
var (
	// ErrHostKey means the host's key could not be verified: it is
	// unknown, changed, revoked, or a certificate the CA does not vouch
	// for. Every ErrHostKeyMismatch and ErrUnknownHost also matches
	// ErrHostKey.
	ErrHostKey = errors.New("host key verification failed")
	// ErrConfig means ssh_config could not be resolved for the host (ssh
	// -G failed, or the built-in parser refused a construct).
	ErrConfig = errors.New("ssh_config")
	// ErrHostKeyMismatch means the host presented a key that differs from
	// the one known_hosts holds for it. The connection is never used.
	ErrHostKeyMismatch = errors.New("host key mismatch")
	// ErrHostKeyRevoked means the host's key, or the CA that signed its
	// certificate, is marked @revoked. It also matches ErrHostKeyMismatch.
	ErrHostKeyRevoked = errors.New("host key revoked")
	// ErrHostCertificate means a CA the host is listed under signed its
	// certificate, but the certificate is not valid for it (principal,
	// validity, type). It also matches ErrHostKeyMismatch.
	ErrHostCertificate = errors.New("host certificate invalid")
	// ErrUnknownHost means known_hosts has no key for the host and TOFU
	// is off.
	ErrUnknownHost = errors.New("unknown host")
	// ErrAuth means the server refused every credential offered, or no
	// usable credential was found.
	ErrAuth = errors.New("ssh authentication failed")
	// ErrUnreachable means the TCP connection or the SSH transport could
	// not be established or was lost (refused, timed out, reset).
	ErrUnreachable = errors.New("host unreachable")
	// ErrClosed means the Pool was closed.
	ErrClosed = errors.New("ssh pool closed")
)

// ConnectError is returned by Pool.Client (and by Client methods whose
// connection broke) when no usable connection to a host exists. It tells
// "could not connect" apart from a command that ran and failed (see
// ExitError). Err wraps one of ErrUnreachable, ErrUnknownHost,
// ErrHostKeyMismatch, ErrAuth or a context error.
type ConnectError struct {
	Host string // Host.Name
	Addr string // dial address, "host:port"
	Err  error
}

// Error implements error.
func (e *ConnectError) Error() string {
	if e.Addr == "" {
		return fmt.Sprintf("ssh connect %s: %v", e.Host, e.Err)
	}
	return fmt.Sprintf("ssh connect %s (%s): %v", e.Host, e.Addr, e.Err)
}

// Unwrap returns the cause.
func (e *ConnectError) Unwrap() error { return e.Err }

// Class names the failure for monitors, so that they can tell a dead host
// from a changed key: "host_key", "auth", "unreachable", "config", or ""
// (a cancelled context, a closed Pool).
func (e *ConnectError) Class() string {
	switch {
	case errors.Is(e.Err, ErrHostKey):
		return "host_key"
	case errors.Is(e.Err, ErrAuth):
		return "auth"
	case errors.Is(e.Err, ErrUnreachable):
		return "unreachable"
	case errors.Is(e.Err, ErrConfig):
		return "config"
	}
	return ""
}

// ExitError is returned by Client.Run when the remote command ran and
// exited with a non-zero status or was killed by a signal.
type ExitError struct {
	// Code is the exit status; -1 if the command was killed by a signal
	// without a status.
	Code int
	// Signal is the name of the signal that killed the command ("KILL"),
	// or "".
	Signal string
	// Stderr is the command's standard error; only its last 64 KiB are
	// kept.
	Stderr string
}

// Error implements error: "exit status 3: <last stderr line>".
func (e *ExitError) Error() string {
	var msg string
	if e.Signal != "" {
		msg = "killed by signal " + e.Signal
	} else {
		msg = fmt.Sprintf("exit status %d", e.Code)
	}
	if line := lastLine(e.Stderr); line != "" {
		msg += ": " + line
	}
	return msg
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\r\n\t ")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}
