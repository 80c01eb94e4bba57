package main

import (
	"fmt"

	"github.com/sgerun/sgerun/internal/version"
	"github.com/sgerun/sgerun/ui"
	"github.com/spf13/cobra"
)

func (a *app) versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the release version, git commit, build date and Go version",
		Long: `Print which sgerun this is: the release version, the git commit and build
date set by the build, the Go version and the platform. sgerun --version prints
the same. Each run's journal records the version that started it (sgerun show).`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(*cobra.Command, []string) error {
			asJSON, err := a.json()
			if err != nil {
				return err
			}
			in := version.Get()
			if asJSON {
				return ui.WriteJSON(a.out, in)
			}
			_, err = fmt.Fprint(a.out, in.Text())
			return err
		},
	}
}
