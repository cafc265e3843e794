// Command filebeat is Filebeat, built from the same pinned beats module as
// teleportbeat, for the side-by-side benchmark (bench/). It is Filebeat's
// own main.go; this separate module keeps Filebeat's many dependencies out
// of teleportbeat's go.mod.
package main

import (
	"os"
	_ "time/tzdata" // for timezone handling

	"github.com/elastic/beats/v7/filebeat/cmd"
	inputs "github.com/elastic/beats/v7/filebeat/input/default-inputs"
)

func main() {
	if err := cmd.Filebeat(inputs.Init, cmd.FilebeatSettings("")).Execute(); err != nil {
		os.Exit(1)
	}
}
