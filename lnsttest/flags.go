package lnsttest

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/lnst-go/lnst/pool"
)

// config holds the -lnst.* flags, read once in Main.
type config struct {
	strict    bool
	lab       string
	ifnames   string
	pool      string
	logLevel  string
	agentLog  string
	summary   bool
	results   string
	history   string
	vmCache   string
	vmKernel  string
	vmModules string
	vmMemory  string
	vmCPUs    string
	vmMaxBoot string
	vmOvs     string
	vmAccel   string
	reruns    string
	sets      setFlag
	params    bool
	capture   string
	sysinfo   string
	kernelLog string
	profile   string
	profRun   string
}

// lnstFlags is every -lnst.* flag with its environment variable.
var lnstFlags = map[string]string{}

var cfg config

func init() {
	boolFlag(&cfg.strict, "strict", false, "fail, instead of skip, a recipe whose requirements cannot be met")
	stringFlag(&cfg.lab, "lab", "netns", "the local lab to use when no pool is given: netns (rootless when not run as root), rootless, vm (QEMU guests booting a Debian kernel) or auto (netns, and VMs for recipes needing kernel kinds this kernel lacks)")
	stringFlag(&cfg.ifnames, "lab.ifnames", "same", "how the local lab names its hosts' interfaces: same (as the recipe requires them, eth0) or mapped (lnst1p0, lnst2p0...: unlike the requirement, as on real machines, so that a recipe using a required name where it needs the device's real Name() fails)")
	stringFlag(&cfg.vmCache, "vm.cache", "", "directory the VM lab's image is built and cached in (default: lnst/vm in the user cache directory)")
	stringFlag(&cfg.vmKernel, "vm.kernel", "", "bzImage the VM lab boots instead of Debian's cloud kernel: a kernel under test")
	stringFlag(&cfg.vmModules, "vm.modules", "", "modules tree of -lnst.vm.kernel (its /lib/modules/RELEASE directory)")
	stringFlag(&cfg.vmMemory, "vm.memory", "512", "memory of each VM lab guest, in MiB")
	stringFlag(&cfg.vmCPUs, "vm.cpus", "1", "virtual CPUs of each VM lab guest")
	stringFlag(&cfg.vmMaxBoot, "vm.maxboot", "0", "how many VM lab guests boot at once (0: one per host CPU for each guest CPU); the others wait their turn")
	stringFlag(&cfg.vmAccel, "vm.accel", "auto", "how QEMU runs the VM lab's guests: auto (KVM where a probe, cached per machine with the kernel and QEMU versions, finds it works; TCG otherwise, saying why), kvm (fail where KVM does not work) or tcg (emulate, works everywhere)")
	stringFlag(&cfg.vmOvs, "vm.ovs", "false", "add Open vSwitch to the VM lab's image (true or false)")
	stringFlag(&cfg.pool, "pool", "", "pool file of machines running lnst-agent (default: the local lab); a relative path is resolved against the module root (the directory of go.mod), not the test package's directory go test runs the binary in")
	stringFlag(&cfg.reruns, "reruns", "0", "how many times a recipe that failed because its provisioned machine died is run again, on another machine")
	stringFlag(&cfg.logLevel, "log-level", "info", "recipe log level (trace, debug, info, warn, error), logged with t.Log")
	stringFlag(&cfg.agentLog, "agent-log", "warn", "lab agent log level (trace, debug, info, warn, error), logged on stderr")
	boolFlag(&cfg.summary, "summary", true, "print a RESULTS SUMMARY at the end of each recipe")
	stringFlag(&cfg.results, "results", "", "write results.json, the run's events file (lnst status DIR) and job outputs into this directory, as the run goes")
	lnstFlags["lnst.set"] = "LNST_SET_*"
	flag.Var(&cfg.sets, "lnst.set", "set a recipe parameter: NAME=VALUE, repeatable (env LNST_SET_NAME, NAME upper-cased with _ for . and -); -lnst.params lists them")
	boolFlag(&cfg.params, "params", false, "list the recipe parameters of this test binary (type, default, doc) and exit")
	stringFlag(&cfg.capture, "capture", "off", "capture packets on every matched interface of every host during each recipe, as pcapng files in the -lnst.results directory: off, failed (kept for failed recipes only) or all")
	stringFlag(&cfg.history, "history", "", "results.json (or its directory) of an earlier run: on a pool, among recipes of one width the longest last time then gets hosts first (default: the one in -lnst.results)")
	stringFlag(&cfg.sysinfo, "sysinfo", "summary", "what is read of each recipe's hosts before and after it: off; summary (ethtool -S and link statistics of matched interfaces, /proc/net/snmp, snmp6, netstat and softnet_stat: the counters that changed go to results.json, the error and drop counters that changed to the RESULTS SUMMARY; once per run per machine its kernel, command line, modules, CPU, NUMA layout and NIC drivers and firmware); or full (summary, and every counter before and after in a file per host next to results.json)")
	stringFlag(&cfg.profile, "profile", "off", "off, or perf: record perf record -a -g on every host of the recipes -lnst.profile.run matches over each measured window of perf.MeasureFlows, and keep perf.data and a perf report --stdio summary in the -lnst.results directory (needs perf, Debian package linux-perf, on the hosts)")
	stringFlag(&cfg.profRun, "profile.run", ".", "regular expression (Go syntax, as -test.run matches the full test name) of the recipes -lnst.profile profiles")
	stringFlag(&cfg.kernelLog, "kernel-log", "on", "on: fail a recipe when the kernel of one of its hosts logs a WARNING, BUG, Oops, sanitizer report, lockdep splat, RCU stall, lockup or unregister_netdevice wait while it runs (see AllowKernelLog; namespace lab hosts share this machine's kernel, so there it is the recipe's time window that counts); all: also such a line a process wrote into /dev/kmsg; off")
}

func envName(name string) string {
	return "LNST_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

func boolFlag(p *bool, name string, def bool, usage string) {
	lnstFlags["lnst."+name] = envName(name)
	flag.BoolVar(p, "lnst."+name, def, usage+" (env "+envName(name)+")")
}

func stringFlag(p *string, name, def, usage string) {
	lnstFlags["lnst."+name] = envName(name)
	flag.StringVar(p, "lnst."+name, def, usage+" (env "+envName(name)+")")
}

// loadConfig applies LNST_* variables to the flags not given on the command
// line and checks every value.
func loadConfig(fs *flag.FlagSet, getenv func(string) string) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fromEnv := map[string]bool{}
	for name, env := range lnstFlags {
		v := getenv(env)
		if set[name] || v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return fmt.Errorf("environment variable %s=%q: %v", env, v, err)
		}
		fromEnv[name] = true
	}
	// source names where a flag's value came from: the flag or its variable.
	source := func(name string) string {
		if fromEnv[name] {
			return "environment variable " + lnstFlags[name]
		}
		return "-" + name
	}
	for _, c := range []struct{ flag, value string }{{"lnst.log-level", cfg.logLevel}, {"lnst.agent-log", cfg.agentLog}} {
		if hclog.LevelFromString(c.value) == hclog.NoLevel {
			return fmt.Errorf("%s: unknown log level %q (want trace, debug, info, warn or error)", source(c.flag), c.value)
		}
	}
	switch cfg.kernelLog {
	case "on", "all", "off":
	default:
		return fmt.Errorf("%s: unknown kernel-log value %q (want on, all or off)", source("lnst.kernel-log"), cfg.kernelLog)
	}
	switch cfg.sysinfo {
	case "off", "summary", "full":
	default:
		return fmt.Errorf("%s: unknown sysinfo level %q (want off, summary or full)", source("lnst.sysinfo"), cfg.sysinfo)
	}
	switch cfg.lab {
	case "netns", "rootless", "vm", "auto":
	default:
		return fmt.Errorf("%s: unknown lab %q (want netns, rootless, vm or auto)", source("lnst.lab"), cfg.lab)
	}
	if err := pool.CheckIfNaming(pool.IfNaming(cfg.ifnames)); err != nil {
		return fmt.Errorf("%s: %v", source("lnst.lab.ifnames"), err)
	}
	if m, err := strconv.Atoi(cfg.vmMemory); err != nil || m < 128 || m > 65536 {
		return fmt.Errorf("%s: %q is not a memory size in MiB from 128 to 65536", source("lnst.vm.memory"), cfg.vmMemory)
	}
	if _, err := pool.ParseAccel(cfg.vmAccel); err != nil {
		return fmt.Errorf("%s: %v", source("lnst.vm.accel"), err)
	}
	if _, err := strconv.ParseBool(cfg.vmOvs); err != nil {
		return fmt.Errorf("%s: %q is neither true nor false", source("lnst.vm.ovs"), cfg.vmOvs)
	}
	if n, err := strconv.Atoi(cfg.vmCPUs); err != nil || n < 1 || n > 64 {
		return fmt.Errorf("%s: %q is not a number of CPUs from 1 to 64", source("lnst.vm.cpus"), cfg.vmCPUs)
	}
	if n, err := strconv.Atoi(cfg.vmMaxBoot); err != nil || n < 0 || n > 1024 {
		return fmt.Errorf("%s: %q is not a number of guests from 0 (one per CPU) to 1024", source("lnst.vm.maxboot"), cfg.vmMaxBoot)
	}
	if n, err := strconv.Atoi(cfg.reruns); err != nil || n < 0 || n > 100 {
		return fmt.Errorf("%s: %q is not a number of reruns from 0 to 100", source("lnst.reruns"), cfg.reruns)
	}
	switch cfg.capture {
	case "", "off":
	case "failed", "all":
		if cfg.results == "" {
			return fmt.Errorf("%s: %q keeps pcapng files in the results directory: give -lnst.results DIR too", source("lnst.capture"), cfg.capture)
		}
	default:
		return fmt.Errorf("%s: unknown capture mode %q (want off, failed or all)", source("lnst.capture"), cfg.capture)
	}
	if err := checkProfileFlags(source); err != nil {
		return err
	}
	if cfg.vmModules != "" && cfg.vmKernel == "" {
		return fmt.Errorf("%s: a modules tree needs its kernel: give -lnst.vm.kernel too", source("lnst.vm.modules"))
	}
	for _, c := range []struct{ flag, path string }{{"lnst.vm.kernel", cfg.vmKernel}, {"lnst.vm.modules", cfg.vmModules}} {
		if c.path == "" {
			continue
		}
		if _, err := os.Stat(c.path); err != nil {
			return fmt.Errorf("%s: %v", source(c.flag), err)
		}
	}
	return nil
}
