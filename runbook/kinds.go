package runbook

import (
	"strings"

	"github.com/sgerun/sgerun/steps"
)

func kindList() string { return strings.Join(steps.KindNames(), ", ") }
