// Command mplock coordinates real operating-system processes with real locks,
// and shows, measures and explains what happens with and without them.
package main

import "os"

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}
