// teleportbeat ships Teleport audit events into the Elastic Stack.
package main

import (
	"os"

	"github.com/teleportbeat/teleportbeat/cmd"
)

func main() {
	os.Exit(cmd.Execute(os.Stderr))
}
