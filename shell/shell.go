// Package shell quotes values for POSIX sh, so that nothing a user or a
// remote host supplies is ever interpreted by a shell.
package shell

import "strings"

// Quote returns s as one single-quoted sh word. Every byte, including
// newlines, ';', '$(', backticks and spaces, stays literal.
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes each argument and joins them with spaces.
func Join(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = Quote(a)
	}
	return strings.Join(q, " ")
}

func isSafe(s string) bool {
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.ContainsRune("-_./:@%+,", c):
		default:
			return false
		}
	}
	return true
}
