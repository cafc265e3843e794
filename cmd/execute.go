package cmd

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/elastic/beats/v7/libbeat/cfgfile"
)

// go-ucfg, the configuration library of every Beat, panics on some
// malformed keys (`-1.a:` in a config file or a -E setting; found by
// fuzzing, see config/fuzz_test.go). libbeat's run command recovers the
// panic but logs it before logging is set up, so the beat exits without a
// word. teleportbeat reads the configuration once before libbeat does,
// with libbeat's own loader, and turns such a panic into a clear error.

// Execute runs the root command and returns the process's exit code.
// kibana holds the Kibana assets (kibana/...) carried in the binary.
func Execute(stderr io.Writer, kibana fs.FS) (code int) {
	// -E settings are parsed with the flags, before any command runs.
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if !fromUcfg() {
			panic(r)
		}
		fmt.Fprintln(stderr, "Error:", malformed("the -E settings", r))
		code = 1
	}()
	root := RootCmd()
	root.PersistentPreRunE = checkConfigParses
	// setup loads the embedded dashboards when path.home has none.
	setupRun := root.SetupCmd.Run
	root.SetupCmd.Run = func(c *cobra.Command, args []string) {
		cleanup, err := useEmbeddedDashboards(c, kibana)
		if err != nil {
			fmt.Fprintln(stderr, "Error:", err)
			os.Exit(1)
		}
		defer cleanup()
		setupRun(c, args)
	}
	root.SilenceUsage = true
	if err := root.Execute(); err != nil {
		return 1
	}
	return 0
}

// checkConfigParses loads the config files as libbeat will, failing with a
// clear error where go-ucfg would panic. Other errors are left to libbeat,
// which reports them in its own words.
func checkConfigParses(*cobra.Command, []string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if !fromUcfg() {
				panic(r)
			}
			// cobra prints it, as "Error: ...".
			err = fmt.Errorf("%s", malformed("the config files given with -c", r))
		}
	}()
	cfg, _ := cfgfile.Load("", nil)
	// The Proxy's private CA must be in the system roots before anything
	// uses TLS (cmd/proxyca.go); the copies live as long as the process.
	if _, err := trustProxyCAs(cfg); err != nil {
		return err
	}
	return nil
}

func fromUcfg() bool {
	return strings.Contains(string(debug.Stack()), "github.com/elastic/go-ucfg.")
}

func malformed(where string, r any) string {
	return fmt.Sprintf("the configuration cannot be read: a key in %s is malformed (the parser failed with %q)", where, fmt.Sprint(r))
}
