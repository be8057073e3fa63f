package cloud

import "sort"

// sortFlavors orders flavors from small to large, then by name.
func sortFlavors(fs []Flavor) {
	sort.Slice(fs, func(i, j int) bool {
		if fs[i].VCPUs != fs[j].VCPUs {
			return fs[i].VCPUs < fs[j].VCPUs
		}
		if fs[i].RAM != fs[j].RAM {
			return fs[i].RAM < fs[j].RAM
		}
		return fs[i].Name < fs[j].Name
	})
}
