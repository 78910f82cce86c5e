package deploy_test

import (
	"fmt"

	"github.com/lnst-go/lnst/internal/deploy"
)

func ExampleParseTarget() {
	t, err := deploy.ParseTarget("root@[2001:db8::11]:2222")
	if err != nil {
		panic(err)
	}
	fmt.Println(t.User, t.Host, t.Port, t.Addr())
	// Output: root 2001:db8::11 2222 [2001:db8::11]:2222
}
