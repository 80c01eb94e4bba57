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
	"github.com/sgerun/sgerun/sge"
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
	boot := sge.ParseBootstrap(bootstrap)
	params := boot.SpoolingParams
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
		"@ADMIN_USER@", boot.AdminUser,
		"@IGNORE_FQDN@", boot.Value("ignore_fqdn"),
		"@BINARY_PATH@", boot.BinaryPath,
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
