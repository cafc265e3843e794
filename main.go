// teleportbeat ships Teleport audit events into the Elastic Stack.
package main

import (
	"embed"
	"os"

	"github.com/teleportbeat/teleportbeat/cmd"
)

// kibanaAssets are the Kibana saved objects (`go tool mage update` writes
// kibana/), carried in the binary so that `teleportbeat setup` loads the
// dashboards from any directory, not only from the install directory.
//
//go:embed kibana
var kibanaAssets embed.FS

func main() {
	os.Exit(cmd.Execute(os.Stderr, kibanaAssets))
}
