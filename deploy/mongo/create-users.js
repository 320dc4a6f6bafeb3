// One MongoDB user per service, readWrite on its own database only (and append-only on the
// audit log for those that record in it) (run by `mongo-init`
// after the replica set has a primary; safe to run again: it creates or updates).
// Passwords are read from secret files, never from the environment or the command line.
const fs = require("fs");
const read = (name) => fs.readFileSync(`/run/secrets/${name}`, "utf8").trim();
const prefix = process.env.IBEST_DB_PREFIX || "ibest";
const conn = new Mongo("mongodb://mongo:27017/?replicaSet=rs0");
const admin = conn.getDB("admin");
admin.auth("root", read("mongo_root_password"));
// The audit log (ibest/backbone/audit.py) is append-only: the services that record in it
// may insert and read there, never update or delete.
const auditDb = `${prefix}_audit`;
const auditRole = "ibestAuditAppend";
const auditPrivileges = [{
  resource: { db: auditDb, collection: "" },
  actions: ["insert", "find", "createIndex", "listIndexes", "listCollections"],
}];
if (admin.getRole(auditRole)) {
  admin.updateRole(auditRole, { privileges: auditPrivileges, roles: [] });
} else {
  admin.createRole({ role: auditRole, privileges: auditPrivileges, roles: [] });
}
// The services of ibest/registry.py; those that record in the audit log have `audit_log`
// in deploy/services/<name>.yml.
// BEGIN GENERATED services (python -m deploy.generate: do not edit by hand)
const services = ["enrolment", "outcomes", "notifications", "reporting", "gateway", "forms"];
const recordsAudit = new Set(["enrolment", "notifications", "reporting", "forms"]);
// END GENERATED services
for (const service of services) {
  const user = `ibest-${service}`;
  const roles = [{ role: "readWrite", db: `${prefix}_${service}` }];
  if (recordsAudit.has(service)) roles.push({ role: auditRole, db: "admin" });
  const pwd = read(`mongo_password_${service}`);
  if (admin.getUser(user)) {
    admin.updateUser(user, { pwd, roles });
  } else {
    admin.createUser({ user, pwd, roles });
  }
  print(`user ${user}: readWrite on ${prefix}_${service}`);
}
// The backup profile's mongodump (deploy/backup/mongo.sh): MongoDB's `backup` role only
// (read every database, the oplog for --oplog), nothing else.
{
  const user = "ibest-backup";
  const roles = [{ role: "backup", db: "admin" }];
  const pwd = read("mongo_password_backup");
  if (admin.getUser(user)) {
    admin.updateUser(user, { pwd, roles });
  } else {
    admin.createUser({ user, pwd, roles });
  }
  print(`user ${user}: backup`);
}
