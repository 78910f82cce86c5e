package devices

// Ifb is an intermediate functional block device: traffic a tc mirred
// action redirects or mirrors to it passes through its qdiscs, so that
// what a device receives can be shaped or counted there.
type Ifb struct {
	Name string
}

// LinkName returns the device's name.
func (i Ifb) LinkName() string { return i.Name }

// Kind returns "ifb".
func (Ifb) Kind() string { return "ifb" }

// Validate checks the name.
func (i Ifb) Validate() error {
	_, err := newCheck(i.Kind(), i.Name)
	return err
}
