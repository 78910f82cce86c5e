package modules_test

import (
	"fmt"
	"time"

	"github.com/lnst-go/lnst/modules"
)

func ExamplePingResult_String() {
	res := modules.PingResult{Sent: 5, Received: 4, Lost: 1,
		RTTMin: 40 * time.Microsecond, RTTAvg: 52 * time.Microsecond, RTTMax: 71 * time.Microsecond}
	fmt.Println(res)
	// Output: sent 5 received 4 lost 1 rtt min/avg/max 0.040/0.052/0.071 ms
}

func ExampleIperf3Result_String() {
	res := modules.Iperf3Result{Protocol: "TCP", BitsPerSecond: 9.41e9, Retransmits: 12,
		Streams: 4, Duration: 5 * time.Second}
	fmt.Println(res)
	// Output: TCP 9.41 Gbit/s, 12 retransmits, 4 streams, 5s
}

func ExampleFormatBitrate() {
	fmt.Println(modules.FormatBitrate(941e6))
	// Output: 941.00 Mbit/s
}
