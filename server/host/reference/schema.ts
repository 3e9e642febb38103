// The reference host's database: BlueMind's own table names and the columns a backup and a single restore
// touch (see docs/bluemind-dataprotect.md §6). Types follow BlueMind's SQL where it matters (timestamps without
// time zone plus a separate timezone column, parallel attendee arrays, enums); hstore columns are jsonb here so
// that no extension is needed.

export const SCHEMA_VERSION = '5.1.0-reference';

/** Marker table: a database holding it was created by the reference host and may be re-seeded. */
export const MARKER_TABLE = 't_reference_host';

export const SCHEMA_SQL = `
CREATE TYPE enum_account_type AS ENUM ('FULL', 'SIMPLE', 'FULL_AND_VISIO');
CREATE TYPE enum_mailbox_routing AS ENUM ('internal', 'external', 'none');
CREATE TYPE enum_mailbox_type AS ENUM ('user', 'mailshare', 'resource', 'group');
CREATE TYPE e_datetime_precision AS ENUM ('Date', 'DateTime');

CREATE TABLE ${MARKER_TABLE} (
  schema_version text NOT NULL,
  installation_id text NOT NULL,
  seed integer NOT NULL,
  users integer NOT NULL,
  seeded_at timestamp NOT NULL
);

CREATE TABLE t_container (
  id serial PRIMARY KEY,
  uid text NOT NULL UNIQUE,
  container_type varchar(50) NOT NULL,
  name text,
  owner text,
  createdby text,
  updatedby text,
  created timestamp NOT NULL DEFAULT now(),
  updated timestamp NOT NULL DEFAULT now(),
  defaultcontainer boolean NOT NULL DEFAULT false,
  domain_uid text,
  readonly boolean NOT NULL DEFAULT false
);
CREATE INDEX i_container_owner ON t_container (owner);

CREATE TABLE t_container_item (
  id bigserial PRIMARY KEY,
  container_id integer NOT NULL REFERENCES t_container (id) ON DELETE CASCADE,
  uid text NOT NULL,
  version integer NOT NULL DEFAULT 0,
  external_id text,
  displayname text,
  createdby text,
  updatedby text,
  created timestamp NOT NULL DEFAULT now(),
  updated timestamp NOT NULL DEFAULT now(),
  flags integer NOT NULL DEFAULT 0,
  UNIQUE (container_id, uid)
);

CREATE TABLE t_container_acl (
  container_id integer NOT NULL REFERENCES t_container (id) ON DELETE CASCADE,
  subject text NOT NULL,
  verb text NOT NULL,
  position integer NOT NULL DEFAULT 0
);

CREATE TABLE t_container_sequence (
  container_id integer PRIMARY KEY REFERENCES t_container (id) ON DELETE CASCADE,
  seq bigint NOT NULL DEFAULT 0
);

CREATE TABLE t_domain (
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE,
  label text NOT NULL,
  name text NOT NULL UNIQUE,
  description text,
  global boolean NOT NULL DEFAULT false,
  aliases text[] NOT NULL DEFAULT '{}',
  default_alias text,
  properties jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE t_directory_entry (
  item_id bigint NOT NULL UNIQUE REFERENCES t_container_item (id) ON DELETE CASCADE,
  kind text NOT NULL,
  account_type enum_account_type,
  entry_uid text NOT NULL,
  displayname text,
  email text,
  flag_hidden boolean NOT NULL DEFAULT false,
  flag_system boolean NOT NULL DEFAULT false,
  flag_archived boolean NOT NULL DEFAULT false,
  orgunit_item_id bigint REFERENCES t_container_item (id) ON DELETE SET NULL,
  datalocation text
);

CREATE TABLE t_directory_ou (
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE,
  name text NOT NULL,
  parent_item_id bigint REFERENCES t_container_item (id) ON DELETE CASCADE
);

CREATE TABLE t_domain_user (
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE,
  login varchar(64) NOT NULL,
  password text,
  password_lastchange timestamp,
  password_mustchange boolean NOT NULL DEFAULT false,
  password_neverexpires boolean NOT NULL DEFAULT false,
  archived boolean NOT NULL DEFAULT false,
  system boolean NOT NULL DEFAULT false,
  hidden boolean NOT NULL DEFAULT false,
  routing enum_mailbox_routing NOT NULL DEFAULT 'internal',
  server_id text,
  properties jsonb NOT NULL DEFAULT '{}',
  password_algorithm text,
  mailbox_copy_guid text
);

CREATE TABLE t_group (
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE,
  name text NOT NULL,
  description text,
  hidden boolean NOT NULL DEFAULT false,
  hidden_members boolean NOT NULL DEFAULT false,
  mail_archived boolean NOT NULL DEFAULT false,
  server_id text,
  properties jsonb NOT NULL DEFAULT '{}'
);

CREATE TABLE t_group_usermember (
  group_id bigint NOT NULL REFERENCES t_container_item (id) ON DELETE CASCADE,
  user_id bigint NOT NULL REFERENCES t_container_item (id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
);

CREATE TABLE t_resource (
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE,
  typeidentifier text NOT NULL,
  label text NOT NULL,
  description text,
  reservation_mode text NOT NULL DEFAULT 'AUTO_ACCEPT'
);

CREATE TABLE t_mailbox (
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE,
  name text NOT NULL,
  type enum_mailbox_type NOT NULL,
  system boolean NOT NULL DEFAULT false,
  hidden boolean NOT NULL DEFAULT false,
  archived boolean NOT NULL DEFAULT false,
  routing enum_mailbox_routing NOT NULL DEFAULT 'internal',
  quota integer,
  datalocation text
);

CREATE TABLE t_mailbox_email (
  item_id bigint NOT NULL REFERENCES t_container_item (id) ON DELETE CASCADE,
  left_address text NOT NULL,
  right_address text NOT NULL,
  all_aliases boolean NOT NULL DEFAULT false,
  is_default boolean NOT NULL DEFAULT false
);

CREATE TABLE t_calendar_vevent (
  dtstart_timestamp timestamp,
  dtstart_timezone text,
  dtstart_precision e_datetime_precision,
  dtend_timestamp timestamp,
  dtend_timezone text,
  dtend_precision e_datetime_precision,
  summary text,
  location text,
  description text,
  class text,
  transparency text,
  status text,
  priority integer,
  organizer_uri text,
  organizer_cn text,
  organizer_mailto text,
  organizer_dir text,
  url text,
  categories text[],
  exdate_timestamp timestamp[],
  exdate_timezone text[],
  exdate_precision e_datetime_precision[],
  rdate_timestamp timestamp[],
  rdate_timezone text[],
  rdate_precision e_datetime_precision[],
  cutype text[],
  member text[],
  att_role text[],
  partstat text[],
  rsvp boolean[],
  cn text[],
  att_uid text[],
  att_mailto text[],
  rrule_frequency text,
  rrule_interval integer,
  rrule_count integer,
  rrule_until_timestamp timestamp,
  rrule_until_timezone text,
  rrule_until_precision e_datetime_precision,
  rrule_byday text[],
  rrule_bymonthday integer[],
  recurid_timestamp timestamp,
  recurid_timezone text,
  recurid_precision e_datetime_precision,
  sequence integer NOT NULL DEFAULT 0,
  draft boolean NOT NULL DEFAULT false,
  item_id bigint NOT NULL REFERENCES t_container_item (id) ON DELETE CASCADE
);
CREATE INDEX i_calendar_vevent_item ON t_calendar_vevent (item_id);

CREATE TABLE t_calendar_series (
  accept_counters boolean NOT NULL DEFAULT false,
  properties jsonb NOT NULL DEFAULT '{}',
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE
);

CREATE TABLE t_addressbook_vcard (
  kind text NOT NULL DEFAULT 'individual',
  source text,
  formated_name text,
  familynames text,
  givennames text,
  additionalnames text,
  honorificprefixes text,
  honorificsuffixes text,
  nickname text,
  bday timestamp,
  anniversary timestamp,
  gender text,
  adr_label text[],
  adr_postofficebox text[],
  adr_extentedaddress text[],
  adr_streetaddress text[],
  adr_locality text[],
  adr_region text[],
  adr_postalcode text[],
  adr_countryname text[],
  adr_parameters text[],
  tel text[],
  tel_parameters text[],
  email text[],
  email_parameters text[],
  impp text[],
  url text[],
  title text,
  role text,
  company text,
  division text,
  department text,
  manager text,
  assistant text,
  spouse text,
  member_container_uid text[],
  member_item_uid text[],
  member_cn text[],
  member_mailto text[],
  categories text[],
  note text,
  photo boolean NOT NULL DEFAULT false,
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE
);

CREATE TABLE t_todolist_vtodo (
  uid text,
  dtstart_timestamp timestamp,
  dtstart_timezone text,
  dtstart_precision e_datetime_precision,
  due_timestamp timestamp,
  due_timezone text,
  due_precision e_datetime_precision,
  summary text,
  class text,
  location text,
  description text,
  status text,
  priority integer,
  organizer_uri text,
  organizer_cn text,
  organizer_mailto text,
  url text,
  categories text[],
  rrule_frequency text,
  rrule_interval integer,
  rrule_count integer,
  percent integer,
  completed_timestamp timestamp,
  completed_timezone text,
  completed_precision e_datetime_precision,
  sequence integer NOT NULL DEFAULT 0,
  draft boolean NOT NULL DEFAULT false,
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE
);

CREATE TABLE t_notes_vnote (
  subject text,
  body text,
  color text,
  height integer,
  width integer,
  posx integer,
  posy integer,
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE
);

CREATE TABLE t_webappdata (
  key text NOT NULL,
  value text,
  item_id bigint PRIMARY KEY REFERENCES t_container_item (id) ON DELETE CASCADE
);
`;

/** BlueMind's container uid conventions (the *Uids.java helpers). */
export const containerUids = {
  domains: (installationId: string) => `domains_${installationId}`,
  directory: (domainUid: string) => domainUid,
  defaultCalendar: (ownerUid: string) => `calendar:Default:${ownerUid}`,
  userCalendar: (seed: string) => `calendar:UserCreated:${seed}`,
  resourceCalendar: (resUid: string) => `calendar:${resUid}`,
  contacts: (ownerUid: string) => `book:Contacts_${ownerUid}`,
  collectedContacts: (ownerUid: string) => `book:CollectedContacts_${ownerUid}`,
  domainAddressBook: (domainUid: string) => `addressbook_${domainUid}`,
  defaultTodolist: (ownerUid: string) => `todolist:default_${ownerUid}`,
  domainCalendar: (seed: string) => `calendar:Domain:${seed}`,
  defaultNotes: (ownerUid: string) => `notes:default_${ownerUid}`,
  webAppData: (ownerUid: string) => `webappdata:${ownerUid}`,
  mailboxAcls: (uid: string) => `mailbox:acls-${uid}`,
};
