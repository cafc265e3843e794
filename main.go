// teleportbeat ships Teleport audit events into the Elastic Stack.
package main

import (
	"os"

	"github.com/teleportbeat/teleportbeat/cmd"
)

func main() {
	if err := cmd.RootCmd().Execute(); err != nil {
		os.Exit(1)
	}
}
