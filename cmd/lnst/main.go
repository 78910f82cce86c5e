// Command lnst works with lnst-go runs from outside the test binary.
//
//	lnst results FILE|DIR...              summary of each run: recipes, verdicts, measurements
//	lnst results rebuild DIR              rebuild the results of runs that died from their events
//	lnst status [-f] DIR [RUN]            what a run is doing: running recipes and jobs, last results
//	lnst results compare [-tolerance F] [-alpha P] A B  every metric of B against A, Welch t-test; exit 1 on a regression
//	lnst results html FILE... -o OUT      an HTML report with throughput charts
//	lnst pool check FILE                  connect to every agent of a pool file and check its interfaces
//	lnst vm-image [-cache DIR] [-kernel PATH [-modules DIR]]  build the VM lab's kernel and initramfs
//	lnst gc --libvirt URI                 remove what dead runs left on a libvirt hypervisor
//
// A FILE is a results.json, or a directory holding one (the
// -lnst.results=DIR of a run). A DIR's runs are listed, each with its
// summary; a run that died before its end (SIGKILL, a power loss) is
// shown as its events file tells it.
package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage:
  lnst results FILE|DIR...          summarize runs (results.json files, or -lnst.results
                                    directories: every run in them is listed)
  lnst results rebuild DIR...       rebuild the results file of each run that died before
                                    its end from its events file
  lnst status [-f] DIR [RUN]        the running recipes of DIR's latest run (or RUN), their
                                    hosts and running jobs, its last results; its summary
                                    once it ended; -f follows it until it ends
  lnst results compare [-tolerance F] [-alpha P] A B
                                    compare every metric of run B with run A (Welch t-test);
                                    exit 1 when one regressed
  lnst results html FILE... -o OUT  write an HTML report with throughput charts
  lnst pool check FILE              connect to every agent of a pool file, check its interfaces
  lnst vm-image [-cache DIR] [-kernel PATH [-modules DIR]]
                                    build the VM lab's kernel and initramfs, print their paths
  lnst gc --libvirt URI             remove the domains, networks and volumes that runs whose
                                    controller is gone left on a libvirt hypervisor
`

// run runs the command with args and returns its exit code: 0, 1 when it
// failed, 2 when it was used wrongly.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	switch args[0] {
	case "results":
		return resultsCmd(args[1:], stdout, stderr)
	case "status":
		return statusCmd(args[1:], stdout, stderr)
	case "pool":
		return poolCmd(args[1:], stdout, stderr)
	case "vm-image":
		return vmImageCmd(args[1:], stdout, stderr)
	case "gc":
		return gcCmd(args[1:], stdout, stderr)
	default:
		fmt.Fprintf(stderr, "lnst: unknown command %q\n%s", args[0], usage)
		return 2
	}
}
