# site.pp for role nimbus.
# pre-config (pre_configure) overwrites this file on each node with the node's sections,
# one class declaration per section; see RenderSitePP in straas's shared/gitrepo.
# This committed copy only marks the target path.
