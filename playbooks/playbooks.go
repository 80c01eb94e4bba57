// Package playbooks embeds sgerun's SGE runbooks (takeover, takeback, ...),
// so that the binary carries them and `sgerun playbook show NAME` prints
// them for a site to read, copy and adapt.
package playbooks

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.yaml
var files embed.FS

// Names lists the embedded playbooks.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(names)
	return names
}

// Source returns a playbook's YAML and the name to report positions with.
func Source(name string) (file string, data []byte, err error) {
	file = name + ".yaml"
	data, err = files.ReadFile(file)
	if err != nil {
		return "", nil, fmt.Errorf("no playbook %q (have: %s)", name, strings.Join(Names(), ", "))
	}
	return "playbooks/" + file, data, nil
}
