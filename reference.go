// Package sgerun holds the reference texts the binary carries for
// `sgerun help TOPIC`: the documented example inventory and the runbook
// language reference, so that the help an admin reads is the file the
// project tests.
package sgerun

import _ "embed"

// InventoryExample is inventory.example.yaml: every inventory key with its
// type, default and meaning.
//
//go:embed inventory.example.yaml
var InventoryExample string

// InventoryManPage is the hand-written roff source of sgerun-inventory(5),
// with @VERSION@, @DATE@ and @EXAMPLE@ (InventoryExample) to fill in.
//
//go:embed docs/man/sgerun-inventory.5.in
var InventoryManPage string

// RunbookReference is docs/runbooks.md.
//
//go:embed docs/runbooks.md
var RunbookReference string
