package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	sgerun "github.com/sgerun/sgerun"
	"github.com/sgerun/sgerun/internal/version"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// genCmd is the hidden `sgerun __gen`, which the package build runs to make
// the man pages and shell completions from the commands themselves, so they
// always match the binary they ship with.
func (a *app) genCmd() *cobra.Command {
	gen := &cobra.Command{
		Use:    "__gen",
		Short:  "Generate man pages and shell completions (used by make package)",
		Hidden: true,
	}
	gen.AddCommand(&cobra.Command{
		Use:   "man DIR",
		Short: "Write sgerun(8), one page per command and sgerun-inventory(5) into DIR",
		Args:  exactArgs(1, "one DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return genMan(cmd.Root(), args[0])
		},
	}, &cobra.Command{
		Use:   "completions DIR",
		Short: "Write the bash (sgerun), zsh (_sgerun) and fish (sgerun.fish) completions into DIR",
		Args:  exactArgs(1, "one DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return genCompletions(cmd.Root(), args[0])
		},
	})
	return gen
}

// manDate is the date man pages carry: $SOURCE_DATE_EPOCH (reproducible
// builds), else the build date, else today.
func manDate() (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %w", s, err)
		}
		return time.Unix(n, 0).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339, version.Get().Date); err == nil {
		return t.UTC(), nil
	}
	return time.Now().UTC(), nil
}

func genMan(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("man dir: %w", err)
	}
	date, err := manDate()
	if err != nil {
		return err
	}
	ver := version.String()
	root.DisableAutoGenTag = true
	header := &doc.GenManHeader{Section: "8", Date: &date,
		Source: "sgerun " + ver, Manual: "sgerun Manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		return fmt.Errorf("generate man pages: %w", err)
	}
	page := strings.NewReplacer("@VERSION@", ver, "@DATE@", date.Format("Jan 2006"),
		"@EXAMPLE@", roffLiteral(sgerun.InventoryExample)).Replace(sgerun.InventoryManPage)
	if err := os.WriteFile(filepath.Join(dir, "sgerun-inventory.5"), []byte(page), 0o644); err != nil {
		return fmt.Errorf("write sgerun-inventory(5): %w", err)
	}
	return nil
}

// roffLiteral makes text safe inside a roff .nf block: backslashes are
// escaped, and a line that starts with a control character ('.' or ”')
// is protected with \&. Empty lines stay empty lines.
func roffLiteral(text string) string {
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	for i, l := range lines {
		l = strings.ReplaceAll(l, `\`, `\e`)
		l = strings.ReplaceAll(l, "-", `\-`)
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			l = `\&` + l
		}
		lines[i] = l
	}
	return strings.Join(lines, "\n")
}

func genCompletions(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("completions dir: %w", err)
	}
	for _, c := range []struct {
		file string
		gen  func(*os.File) error
	}{
		{"sgerun", func(f *os.File) error { return root.GenBashCompletionV2(f, true) }},
		{"_sgerun", func(f *os.File) error { return root.GenZshCompletion(f) }},
		{"sgerun.fish", func(f *os.File) error { return root.GenFishCompletion(f, true) }},
	} {
		f, err := os.Create(filepath.Join(dir, c.file))
		if err != nil {
			return fmt.Errorf("completion %s: %w", c.file, err)
		}
		err = c.gen(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("completion %s: %w", c.file, err)
		}
	}
	return nil
}
