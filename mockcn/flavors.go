package mockcn

// Flavor is a Nova flavor.
type Flavor struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	VCPUs  int    `json:"vcpus"`
	RAMMB  int    `json:"ram"`
	DiskGB int    `json:"disk"`
}

// DefaultFlavors are devstack's m1.* flavors and straas's t-shirt sizes. Nova takes a
// flavor's id in flavorRef, not its name: clients resolve names through the flavor list.
var DefaultFlavors = []Flavor{
	{ID: "42", Name: "m1.nano", VCPUs: 1, RAMMB: 128, DiskGB: 1},
	{ID: "84", Name: "m1.micro", VCPUs: 1, RAMMB: 192, DiskGB: 1},
	{ID: "1", Name: "m1.tiny", VCPUs: 1, RAMMB: 512, DiskGB: 1},
	{ID: "2", Name: "m1.small", VCPUs: 1, RAMMB: 2048, DiskGB: 20},
	{ID: "3", Name: "m1.medium", VCPUs: 2, RAMMB: 4096, DiskGB: 40},
	{ID: "4", Name: "m1.large", VCPUs: 4, RAMMB: 8192, DiskGB: 80},
	{ID: "5", Name: "m1.xlarge", VCPUs: 8, RAMMB: 16384, DiskGB: 160},
	{ID: "101", Name: "tiny", VCPUs: 1, RAMMB: 1024, DiskGB: 10},
	{ID: "102", Name: "small", VCPUs: 1, RAMMB: 2048, DiskGB: 20},
	{ID: "103", Name: "medium", VCPUs: 2, RAMMB: 4096, DiskGB: 40},
	{ID: "104", Name: "large", VCPUs: 4, RAMMB: 8192, DiskGB: 80},
	{ID: "105", Name: "xlarge", VCPUs: 8, RAMMB: 16384, DiskGB: 160},
}
