package sshexec

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// classifier lets one `ssh -G` answer stand for many hosts. It reads the
// same ssh_config files ssh would and, when their answers provably differ
// only in the host name, groups destinations by the Host blocks that
// apply to them: two destinations with the same blocks get the same
// answer from ssh -G except for the host name itself. It gives up (nil)
// on anything whose effect on one host it cannot prove: Match,
// canonicalisation, %-tokens or ${VAR} in values ssh -G prints expanded,
// an Include inside a Host block, an unreadable file.
type classifier struct {
	home   string
	blocks []cblock
}

// cblock is one Host block (patterns nil: the lines before any Host,
// which apply to every host).
type cblock struct {
	patterns []string
	hostname string // the block's first HostName, or ""
}

// rawKeywords are printed by ssh -G as written, tokens unexpanded; sshexec
// expands them per host.
var rawKeywords = map[string]bool{"identityfile": true, "certificatefile": true, "proxycommand": true}

// maxIncludeDepth is OpenSSH's READCONF_MAX_DEPTH.
const maxIncludeDepth = 16

// cfgFile is one ssh_config file ssh reads, in order.
type cfgFile struct {
	path string
	user bool // a user file: relative Includes are under ~/.ssh
}

func newClassifier(files []cfgFile, home string) *classifier {
	c := &classifier{home: home}
	for _, f := range files {
		base := "/etc/ssh"
		if f.user {
			base = filepath.Join(home, ".ssh")
		}
		if !c.read(f.path, base, 0, true) {
			return nil
		}
	}
	return c
}

// read adds the blocks of one file; missing is fine when optional.
func (c *classifier) read(path, base string, depth int, optional bool) bool {
	if depth > maxIncludeDepth {
		return false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return optional && os.IsNotExist(err)
	}
	inHost := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	c.blocks = append(c.blocks, cblock{}) // the file's global section
	for sc.Scan() {
		kw, args, ok := splitConfigLine(sc.Text())
		if !ok {
			return false
		}
		if kw == "" {
			continue
		}
		switch {
		case kw == "match" || strings.HasPrefix(kw, "canonical"):
			return false
		case kw == "host":
			inHost = true
			c.blocks = append(c.blocks, cblock{patterns: args})
			continue
		case kw == "include":
			if inHost {
				return false
			}
			for _, pat := range args {
				if strings.ContainsAny(pat, "%$") {
					return false
				}
				if strings.HasPrefix(pat, "~/") {
					pat = filepath.Join(c.home, pat[2:])
				} else if !filepath.IsAbs(pat) {
					pat = filepath.Join(base, pat)
				}
				matches, err := filepath.Glob(pat)
				if err != nil {
					return false
				}
				sort.Strings(matches)
				for _, m := range matches {
					if !c.read(m, base, depth+1, false) {
						return false
					}
				}
			}
			// Lines after an Include apply to every host again.
			c.blocks = append(c.blocks, cblock{})
			continue
		}
		for _, a := range args {
			if strings.Contains(a, "${") || (strings.Contains(a, "%") && !rawKeywords[kw]) {
				return false
			}
		}
		if kw == "hostname" && len(args) > 0 {
			b := &c.blocks[len(c.blocks)-1]
			if b.hostname == "" {
				b.hostname = args[0]
			}
		}
	}
	return sc.Err() == nil
}

// splitConfigLine returns a line's keyword (lower case) and arguments, as
// OpenSSH splits them ("keyword args", "keyword=args", quoted arguments);
// kw is "" for blank and comment lines. ok is false for a line it cannot
// split (an unbalanced quote).
func splitConfigLine(line string) (kw string, args []string, ok bool) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return "", nil, true
	}
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return strings.ToLower(line), nil, true
	}
	kw = strings.ToLower(line[:i])
	rest := strings.TrimLeft(line[i:], " \t")
	rest = strings.TrimPrefix(rest, "=")
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" || rest[0] == '#' {
			return kw, args, true
		}
		if rest[0] == '"' {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				return "", nil, false
			}
			args = append(args, rest[1:1+end])
			rest = rest[2+end:]
			continue
		}
		j := strings.IndexAny(rest, " \t")
		if j < 0 {
			return kw, append(args, rest), true
		}
		args = append(args, rest[:j])
		rest = rest[j:]
	}
}

// hostMatches is OpenSSH's Host line test: a negated pattern that matches
// excludes the host; otherwise any matching pattern includes it. Host
// patterns are case-sensitive.
func hostMatches(patterns []string, host string) bool {
	found := false
	for _, p := range patterns {
		if neg, ok := strings.CutPrefix(p, "!"); ok {
			if wildMatch(neg, host) {
				return false
			}
			continue
		}
		if wildMatch(p, host) {
			found = true
		}
	}
	return found
}

// signature names the Host blocks that apply to dest, and returns the
// HostName they set ("" for none).
func (c *classifier) signature(dest string) (string, string) {
	var b strings.Builder
	hostname := ""
	for _, blk := range c.blocks {
		if blk.patterns != nil {
			if !hostMatches(blk.patterns, dest) {
				b.WriteByte('0')
				continue
			}
			b.WriteByte('1')
		}
		if hostname == "" {
			hostname = blk.hostname
		}
	}
	return b.String(), hostname
}
