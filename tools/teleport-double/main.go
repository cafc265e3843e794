// Command teleport-double runs the Teleport test double on its own: a
// gRPC server speaking Teleport's AuthService and AuditLogService over
// mutual TLS, serving the sample audit events (and generated ones), with
// credentials for teleportbeat written to a directory.
//
//	go run ./tools/teleport-double -dir /tmp/double -generate 100000
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/teleportbeat/teleportbeat/internal/testkit/teleporttest"
)

func main() {
	var (
		addr      = flag.String("listen", "127.0.0.1:3025", "address to listen on")
		dir       = flag.String("dir", "teleport-double", "directory for the credentials (identity file, TLS key pair, CA)")
		corpus    = flag.Bool("corpus", true, "serve the sample events of the repository")
		generate  = flag.Int("generate", 0, "also serve this many generated events")
		start     = flag.String("start", "", "time of the first generated event, RFC 3339 (default: now minus one second per event)")
		step      = flag.Duration("step", time.Second, "time between generated events")
		seed      = flag.Uint64("seed", 1, "seed of the event generator")
		recording = flag.Int("recording", 40, "events in the recording stored for each generated session.upload event")
		latency   = flag.Duration("latency", 0, "latency added to every audit search")
		ttl       = flag.Duration("ttl", 24*time.Hour, "validity of the issued credentials")
	)
	flag.Parse()

	srv, err := teleporttest.New(teleporttest.Config{Addr: *addr})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Stop()
	if *corpus {
		evs, err := teleporttest.CorpusEvents()
		if err != nil {
			log.Fatal(err)
		}
		srv.Store.Add(evs...)
	}
	if *generate > 0 {
		t0 := time.Now().Add(-time.Duration(*generate) * *step)
		if *start != "" {
			if t0, err = time.Parse(time.RFC3339Nano, *start); err != nil {
				log.Fatalf("-start: %v", err)
			}
		}
		g := teleporttest.NewGenerator(*seed)
		srv.Store.Add(g.Events(*generate, t0, *step)...)
		// Generated session.upload events announce recordings: store them,
		// so that teleportbeat.sessions finds what the audit log promises.
		if n := srv.RecordUploads(g, *recording); n > 0 {
			fmt.Printf("Stored a recording of %d events for each of the %d generated session.upload events.\n", *recording, n)
		}
	}
	srv.Faults.SetSearchLatency(*latency)

	id, err := srv.NewIdentity(*ttl)
	if err != nil {
		log.Fatal(err)
	}
	idPath := filepath.Join(*dir, "identity")
	if err := id.WriteIdentityFile(idPath); err != nil {
		log.Fatal(err)
	}
	kp, err := id.WriteKeyPair(filepath.Join(*dir, "teleportbeat"))
	if err != nil {
		log.Fatal(err)
	}
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	fmt.Printf(`Teleport test double for cluster %q listening on %s, serving %d events.
Credentials (valid %s):
  identity file: %s
  TLS key pair:  %s, %s (CA %s)

teleportbeat settings:
  -E teleportbeat.teleport.addr=%s -E teleportbeat.teleport.identity_file=%s
`, srv.ClusterName(), srv.Addr(), srv.Store.Len(), *ttl, abs(idPath), abs(kp.Cert), abs(kp.Key), abs(kp.CA), srv.Addr(), abs(idPath))

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}
