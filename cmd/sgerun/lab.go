package main

// PLACEHOLDER: replaced by the lab implementation.

import "github.com/spf13/cobra"

func newLabCmd() *cobra.Command { return &cobra.Command{Use: "lab", Short: "local SGE lab (not built yet)"} }
