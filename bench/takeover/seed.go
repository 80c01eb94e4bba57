package takeover

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/sgerun/sgerun/lab"
)

// seedTemplate is the seed's sgetakeover with @...@ fields for the lab's
// paths.
//
//go:embed sgetakeover.sh
var seedTemplate string

// fieldRE matches a template field left unfilled.
var fieldRE = regexp.MustCompile(`@[A-Z_]+@`)

// SeedScript renders the seed's sgetakeover for l: the seed's script text
// with only its paths (and the site values of its bootstrap heredoc) taken
// from the lab. bootstrap is the cell's bootstrap before the takeover.
func SeedScript(l *lab.Lab, bootstrap string) (string, error) {
	params := bootValue(bootstrap, "spooling_params")
	if params == "" {
		return "", fmt.Errorf("bootstrap: no spooling_params")
	}
	// The seed derives the spool directory's name as the 5th "/" field of
	// spooling_params (/engrid/ensge/default/spool/spooldb); in the lab it
	// is the field of the spool database's parent directory.
	base := filepath.Dir(filepath.Dir(params))
	field := strings.Count(filepath.Dir(params), "/") + 1
	var execs []string
	execs = append(execs, l.ExecHosts()...)
	r := strings.NewReplacer(
		"@SGE_ROOT@", l.SGERoot(),
		"@CELL@", l.Cell(),
		"@SPOOL_BASE@", base,
		"@FIELD@", strconv.Itoa(field),
		"@ADMIN_USER@", bootValue(bootstrap, "admin_user"),
		"@IGNORE_FQDN@", bootValue(bootstrap, "ignore_fqdn"),
		"@BINARY_PATH@", bootValue(bootstrap, "binary_path"),
		"@EXEC_HOSTS@", strings.Join(execs, " "),
		"@KEY@", l.IdentityPath(),
		"@KNOWN_HOSTS@", l.KnownHostsPath(),
	)
	out := r.Replace(seedTemplate)
	if m := fieldRE.FindString(out); m != "" {
		return "", fmt.Errorf("seed script: field %s not filled", m)
	}
	return out, nil
}

// writeSeedScript writes the rendered seed script into the lab's state dir
// and returns its path.
func writeSeedScript(l *lab.Lab) (string, error) {
	b, err := os.ReadFile(filepath.Join(l.CommonDir(), "bootstrap"))
	if err != nil {
		return "", fmt.Errorf("read bootstrap: %w", err)
	}
	s, err := SeedScript(l, string(b))
	if err != nil {
		return "", err
	}
	p := filepath.Join(l.StateDir(), "sgetakeover")
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		return "", fmt.Errorf("write seed script: %w", err)
	}
	return p, nil
}

// bootValue returns the value of the first "key value" line of a
// bootstrap file, or "".
func bootValue(text, key string) string {
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			return f[1]
		}
	}
	return ""
}
